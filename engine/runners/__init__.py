"""The three runners (cv, training, evaluation) and what carries a run out: the book of fits, parallel and
Dask fits, stop rules, the ETA and its cost model. engine.execute picks the runner."""
