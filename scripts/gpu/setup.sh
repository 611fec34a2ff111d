# Sourced by the scripts beside it on a lent GPU machine: Keras from the carried wheels, emocast
# itself, and FER2013 unpacked from .gpu/ (see pack.py). SKIP_WHEELS=1 where Keras is installed.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl
# emocast importable without pip: the package as pyproject.toml maps it, made of links to this tree
# (run it with `python3 -P`, so the bare emocast/ folder in the working directory does not shadow it)
rm -rf /tmp/emocast-src && mkdir -p /tmp/emocast-src/emocast && cp emocast/*.py /tmp/emocast-src/emocast/
for sub in device convert models hub; do ln -s "$PWD/$sub" "/tmp/emocast-src/emocast/$sub"; done
# JAX: 2.7x faster a step than torch for these small nets on an H100 (XLA compiles the whole step;
# measured in session 4, see sweeps/mnv2_xception.txt); KERAS_BACKEND=torch still works.
export PYTHONPATH=/tmp/emocast-src:/tmp/site${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
mkdir -p .gpu/fer
for split in train public_test; do
  [ -f ".gpu/fer/$split.npz" ] || python3 -c "import sys; sys.path.insert(0, 'scripts/gpu'); import pack; \
    from pathlib import Path; pack.unpack_split(Path('.gpu/$split.xz'), Path('.gpu/fer/$split.npz'))"
done
# the teacher the sweeps distil from: the shipped emocnn averaged with its view of the mirrored face
# (0.6846 on PublicTest against 0.6673 for the single view, measured in session 7)
[ -f .gpu/teacher/model.keras ] || python3 -P -m emocast convert ensemble checkpoints/emocnn_w1_e100/best.keras \
  --mirror --out .gpu/teacher
python3 -c "import keras; print('keras', keras.__version__, 'on', keras.backend.backend())"
[ "$KERAS_BACKEND" != jax ] || python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
