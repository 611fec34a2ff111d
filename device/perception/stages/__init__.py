"""The analysis as stages along the data flow, each with its own config section and its own metrics:
faces and tracks (``faces``), per-face reading by schedule (``reading``, on ``workers``), the optional
stages (``optional``: the emotion sampler, ``emotion``, built only when emotion is on), the summary
accumulator (``summary``), the offline record (``record``). ``pipeline.Analyzer`` runs them in order
on each frame."""
