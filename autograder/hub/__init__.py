"""The course on JupyterHub: one command (``./kit.sh hub``) makes the Unix accounts of a roster, nbgrader's
exchange with the permissions nbgrader documents, the grading account's delegated cgroups, and runs a
JupyterHub on which each user's server is that user's own Unix process.

``launch`` is the command, ``jupyterhub_config.py`` the hub's configuration (it reads the plan the command
wrote), ``singleuser_in_cgroup.sh`` starts the instructor's server inside the delegated cgroups.
"""
