"""DataFrame adapters: the pandas accessor and the polars namespaces (``df.anomaly``).

Registration and conversion only: :mod:`.register` hooks the accessors onto pandas, polars and
dask.dataframe when they get imported (``import ad_pipeline`` never imports them itself);
:mod:`.pandas` and :mod:`.polars` convert columns to numpy arrays and back; :mod:`.methods` holds
the methods both share; :mod:`.tabular` converts frames for the tabular detector. The sort into
series and the engine call are :mod:`ad_pipeline.engine.layout`'s.
"""
