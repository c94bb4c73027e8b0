"""The students' JupyterLab loads ``custom/custom.css`` beside this file (installed into
``etc/jupyter`` with it): nbgrader's Validate dialog wraps long lines.

``LabApp.custom_css`` links ``custom/custom.css`` into the lab's page; the server looks for it
in ``static_custom_path``, which is only the user's config folder (``~/.jupyter/custom``) and
jupyter_server's own, and is no option: ``tornado_settings`` sets it. What other configuration
put in ``tornado_settings`` is kept, and the value is a plain dict: ``.update`` on the config
would leave a lazy value that JupyterHub's single-user server cannot read (its extension fails
to load, and no student's server starts on a hub).
"""

import os

c = get_config()  # noqa: F821 - Jupyter's config loader provides it
c.LabApp.custom_css = True
_settings = dict(c.ServerApp.tornado_settings) if "tornado_settings" in c.ServerApp else {}
_settings["static_custom_path"] = [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "custom")]
c.ServerApp.tornado_settings = _settings
