import os

# XGBoost's OpenMP threads (its bundled libgomp) spin 300,000 times before they sleep. With a second
# training run, an OCR ingest or the app busy on the same two cores, that spinning turns a 0.4 s adapter
# retrain into 20–30 s; spinning 10,000 times keeps it under 1 s and costs nothing on a quiet machine
# (measured: 0.35 s either way). It works best in the environment a process starts with — the training
# worker (labeling.training.runs) and ./start-app set it there; this default covers other entry points (up
# to 10x better). Every import of xgboost here goes through this package, so this runs first.
GOMP_SPINCOUNT = "10000"
os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
