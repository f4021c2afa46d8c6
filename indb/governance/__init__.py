"""Who may do what, and what was scored: grants (``grants.py``), logged batch scoring
(``score.py``), the prediction log (``log.py``), drift (``drift.py``) and training
baselines (``baseline.py``); ``hooks.py`` is what deploy, bind and validate do for them."""
