"""A TAO-API (v2) job service, driven by NVIDIA's TAO Client: ``tao serve``.

Routes under ``/api/v2/orgs/<org>/`` (workspaces, datasets, jobs, jobs:schema, jobs:list_base_experiments, job
logs, files and cancel), state in a SQL database (SQLite by default, PostgreSQL by URL), jobs run by an executor
(local processes today, behind executors.Executor). Install with ``pip install 'tao-launcher[service]'``.
"""
