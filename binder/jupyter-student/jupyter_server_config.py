"""The students' JupyterLab loads ``custom/custom.css`` beside this file (installed into
``etc/jupyter`` with it): nbgrader's Validate dialog wraps long lines.

``LabApp.custom_css`` links ``custom/custom.css`` into the lab's page; the server looks for it
in ``static_custom_path``, which is only the user's config folder (``~/.jupyter/custom``) and
jupyter_server's own, and is no option: ``tornado_settings`` sets it. ``update`` adds to
whatever other configuration puts there (a hub's headers) instead of replacing it.
"""

import os

c = get_config()  # noqa: F821 - Jupyter's config loader provides it
c.LabApp.custom_css = True
c.ServerApp.tornado_settings.update(
    {"static_custom_path": [os.path.join(os.path.dirname(os.path.abspath(__file__)), "custom")]})
