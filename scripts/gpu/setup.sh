# Sourced by the scripts beside it on a lent GPU machine: Keras from the carried wheels, emocast
# itself, and FER2013 unpacked from .gpu/part*/ (see pack.py). SKIP_WHEELS=1 where Keras is installed.
# Where pack.py made more than one part, `bash scripts/gpu/setup.sh` with each earlier part carried
# unpacks it (exit 3: a part is still to come); the last call, carrying the last part, trains.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .gpu/part1/whl/*.whl
# emocast importable without pip: the package as pyproject.toml maps it, made of links to this tree
# (run it with `python3 -P`, so the bare emocast/ folder in the working directory does not shadow it)
rm -rf /tmp/emocast-src && mkdir -p /tmp/emocast-src/emocast && cp emocast/*.py /tmp/emocast-src/emocast/
for sub in device convert models hub; do ln -s "$PWD/$sub" "/tmp/emocast-src/emocast/$sub"; done
# JAX: 2.7x faster a step than torch for these small nets on an H100 (XLA compiles the whole step;
# measured on an H100, see sweeps/mnv2_xception.txt); KERAS_BACKEND=torch still works.
export PYTHONPATH=/tmp/emocast-src:/tmp/site${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
python3 scripts/gpu/pack.py --unpack .gpu || exit $?
# the teacher the sweeps distil from: the shipped emocnn averaged with its view of the mirrored face
# (0.6846 on PublicTest against 0.6673 for the single view)
[ -f .gpu/teacher/model.keras ] || python3 -P -m emocast convert ensemble checkpoints/emocnn_w1_e100/best.keras \
  --mirror --out .gpu/teacher
python3 -c "import keras; print('keras', keras.__version__, 'on', keras.backend.backend())"
[ "$KERAS_BACKEND" != jax ] || python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
