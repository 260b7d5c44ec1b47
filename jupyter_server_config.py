"""JupyterLab for the course, with nbgrader's formgrader.

Start it from the course root, so that nbgrader's extensions read
nbgrader_config.py (and through it course_config.py) from the current
directory:

    cd <course root> && jupyter lab --config=jupyter_server_config.py

nbgrader's server and lab extensions are enabled by installing nbgrader;
this file only keeps the server quiet on a closed network.
"""

c = get_config()  # noqa: F821 - provided by traitlets when this file is loaded

# No JupyterLab news feed and no update check: both call out to the internet,
# and the news prompt covers part of the formgrader.
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
