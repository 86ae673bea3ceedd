# The notebook image's Jupyter server configuration (installed as /etc/jupyter/jupyter_server_config.py).
# Launcher entries through jupyter-server-proxy, each started on its first request and stopped when idle
# by the jhub_idle_proxy server extension beside this file:
#   Desktop      XFCE on TigerVNC, shown by noVNC (jupyter-remote-desktop-proxy's entry; its xstartup here)
#   VS Code      code-server, opening the folder the server was started in (the home directory)
#   TensorBoard  logs under that same folder
# Knobs an admin may set in the pod's environment (the hub's singleuser extraEnv):
#   JHUB_PROXY_IDLE_TIMEOUT   seconds before an unused Desktop/VS Code/TensorBoard stops (default 1800; 0: never)
#   JHUB_VSCODE_FOLDER        the folder VS Code opens (default: the server's working folder)
#   JHUB_TENSORBOARD_LOGDIR   TensorBoard's --logdir (default: the server's working folder)
import os
import sys

c = get_config()  # noqa: F821 (traitlets provides it)

HERE = os.path.dirname(os.path.abspath(__file__))
ICONS = os.path.join(HERE, "icons")
if HERE not in sys.path:  # the image also has a .pth for it; this keeps a bare JUPYTER_CONFIG_PATH working
    sys.path.insert(0, HERE)

WORKING_FOLDER = os.getcwd()

# The desktop session: jupyter-remote-desktop-proxy reads this when its entry loads (after this file).
os.environ.setdefault("JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP", os.path.join(HERE, "desktop-xstartup"))


def vscode_command(port):
    folder = os.environ.get("JHUB_VSCODE_FOLDER") or WORKING_FOLDER
    return ["code-server", "--auth", "none", "--disable-telemetry", "--disable-update-check",
            "--disable-workspace-trust", "--bind-addr", f"127.0.0.1:{port}", folder]


def tensorboard_command(port):
    logdir = os.environ.get("JHUB_TENSORBOARD_LOGDIR") or WORKING_FOLDER
    return ["tensorboard", "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)]


c.ServerProxy.servers = {
    "vscode": {
        "command": vscode_command,
        "timeout": 120,
        "new_browser_tab": True,
        "launcher_entry": {"title": "VS Code", "icon_path": os.path.join(ICONS, "vscode.svg")},
    },
    "tensorboard": {
        "command": tensorboard_command,
        "timeout": 120,
        "new_browser_tab": True,
        "launcher_entry": {"title": "TensorBoard", "icon_path": os.path.join(ICONS, "tensorboard.svg")},
    },
}

c.ServerApp.jpserver_extensions = {"jhub_idle_proxy": True}
c.JhubIdleProxy.timeout = float(os.environ.get("JHUB_PROXY_IDLE_TIMEOUT", "1800"))
