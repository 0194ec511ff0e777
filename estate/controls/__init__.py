"""The framework's controls, one home each (estate/controls/<area>/c<id>_<slug>/), and the rule framework they
are written with (base.py, spec.py, checks.py). A regular package, so that packaging and the import-linter
contract (pyproject.toml) see its modules."""
