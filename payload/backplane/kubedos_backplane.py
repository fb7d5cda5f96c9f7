"""Shared code of the on-node backplane payload (python3 stdlib only, runs as root).

Reads the node's contract file /etc/kubedos/node.json (rendered by the foundry from the plan)
and turns it into WireGuard interfaces, routes, policy rules and the nftables ruleset.
Nothing here talks to the network except through `ip`, `wg`, `nft` and `wireguard-go`.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

PLANES = ("wg1", "wg2", "wg3")
DEFAULT_CONFIG = "/etc/kubedos/node.json"
KEY_DIR = "/etc/wireguard"
ENROLL_DIR = "/etc/kubedos/enroll"
STATE_DIR = "/var/lib/kubedos"
SPOKE_STATE = STATE_DIR + "/planes/hub-peers.json"
HUB_PEERS = STATE_DIR + "/enroll/peers.json"
HUB_USED_TOKENS = STATE_DIR + "/enroll/used-tokens.json"
NFT_FILE = "/etc/kubedos/nftables.conf"


class Failure(Exception):
    """An error with what to do next; printed as `kubedos: <message>` and exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def log(msg):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(argv, check=True, input_text=None, env=None):
    try:
        p = subprocess.run(argv, input=input_text, capture_output=True, text=True, env=env, timeout=60, check=False)
    except FileNotFoundError as exc:
        raise Failure("%s: not installed (%s)" % (argv[0], exc)) from exc
    if check and p.returncode != 0:
        raise Failure("command failed (exit %d): %s\n%s" % (p.returncode, " ".join(argv), (p.stderr or p.stdout).strip()[-2000:]))
    return p


def load_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError as exc:
        raise Failure("%s does not exist: this node has no plan contract (the image must carry /etc/kubedos/node.json)" % path) from exc
    except ValueError as exc:
        raise Failure("%s is not valid JSON: %s" % (path, exc)) from exc
    if cfg.get("kind") != "NodeConfig":
        raise Failure("%s: kind is %r, expected NodeConfig" % (path, cfg.get("kind")))
    for p in PLANES:
        if p not in cfg["node"]["planes"]:
            raise Failure("%s: plane %s missing from node.planes" % (path, p))
    return cfg


def read_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def write_json(path, data, mode=0o600):
    """Atomic write (temp file + fsync + rename) so a crash never leaves half a state file."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def is_wg_key(text):
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return False
    return len(raw) == 32 and len(text) == 44 and raw != bytes(32)


def key_path(plane):
    return "%s/%s.key" % (KEY_DIR, plane)


def ensure_private_key(plane):
    """Generates the plane's private key on this node (it never leaves the node)."""
    path = key_path(plane)
    if os.path.exists(path):
        return path
    os.makedirs(KEY_DIR, mode=0o700, exist_ok=True)
    key = run(["wg", "genkey"]).stdout.strip()
    old = os.umask(0o077)
    try:
        with open(path + ".tmp", "w", encoding="ascii") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
    finally:
        os.umask(old)
    return path


def public_key_of_file(path):
    with open(path, encoding="ascii") as f:
        return run(["wg", "pubkey"], input_text=f.read()).stdout.strip()


def link_exists(name):
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def create_interface(name):
    """Kernel WireGuard when the module exists, else wireguard-go (same configuration)."""
    if link_exists(name):
        return "existing"
    if run(["ip", "link", "add", "dev", name, "type", "wireguard"], check=False).returncode == 0:
        return "kernel"
    if not shutil.which("wireguard-go"):
        raise Failure("cannot create %s: no WireGuard kernel module and no wireguard-go (install wireguard-go or load the wireguard module)" % name)
    env = dict(os.environ)
    env.pop("WG_PROCESS_FOREGROUND", None)  # =0 makes wireguard-go respawn itself endlessly
    os.makedirs("/run/wireguard", mode=0o755, exist_ok=True)
    run(["wireguard-go", name], env=env)
    for _ in range(100):
        if link_exists(name) and os.path.exists("/run/wireguard/%s.sock" % name):
            return "wireguard-go"
        time.sleep(0.05)
    raise Failure("wireguard-go started but %s did not appear within 5 s" % name)


def set_sysctl(key, value):
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(str(value))
    except OSError as exc:
        raise Failure("cannot set %s=%s: %s" % (key, value, exc)) from exc


def plane_cidr(cfg, plane):
    for p in cfg["hub"]["planes"]:
        if p["name"] == plane:
            return p["cidr"]
    raise Failure("plane %s is not in hub.planes of node.json" % plane)


def ip_rule_present(addr, table, priority):
    out = run(["ip", "-4", "rule", "show", "priority", str(priority)]).stdout
    return ("from %s lookup %s" % (addr.split("/")[0], table)) in out


def apply_routes(cfg, plane):
    pa = cfg["node"]["planes"][plane]
    dev = pa["interface"]
    run(["ip", "-4", "route", "replace", plane_cidr(cfg, plane), "dev", dev])
    sr = pa["sourceRoutes"]
    if not sr["destinations"]:
        return
    for dest in sr["destinations"]:
        run(["ip", "-4", "route", "replace", dest, "dev", dev, "table", str(sr["table"])])
    addr = pa["address"].split("/")[0]
    if not ip_rule_present(addr, sr["table"], sr["priority"]):
        run(["ip", "-4", "rule", "add", "from", addr, "lookup", str(sr["table"]), "priority", str(sr["priority"])])


def apply_nftables(cfg):
    text = cfg["node"]["nftables"]
    os.makedirs(os.path.dirname(NFT_FILE), exist_ok=True)
    with open(NFT_FILE, "w", encoding="utf-8") as f:
        f.write(text)
    run(["nft", "-c", "-f", NFT_FILE])
    run(["nft", "-f", NFT_FILE])


def plane_up(cfg, plane):
    pa = cfg["node"]["planes"][plane]
    dev = pa["interface"]
    key = ensure_private_key(plane)
    how = create_interface(dev)
    run(["wg", "set", dev, "listen-port", str(pa["listenPort"]), "private-key", key])
    run(["ip", "-4", "addr", "replace", pa["address"], "dev", dev])
    run(["ip", "link", "set", "dev", dev, "mtu", str(pa["mtu"]), "up"])
    set_sysctl("net.ipv4.conf.%s.rp_filter" % dev, 2)
    apply_routes(cfg, plane)
    return how


def wg_set_peer(dev, public_key, allowed_ips, endpoint=None, keepalive=None, remove_key=None):
    argv = ["wg", "set", dev]
    if remove_key:
        argv += ["peer", remove_key, "remove"]
    argv += ["peer", public_key, "allowed-ips", ",".join(allowed_ips)]
    if endpoint:
        argv += ["endpoint", endpoint]
    if keepalive:
        argv += ["persistent-keepalive", str(keepalive)]
    run(argv)


def wg_remove_peer(dev, public_key):
    run(["wg", "set", dev, "peer", public_key, "remove"], check=False)


def wg_peers(dev):
    """{public key: [allowed ips]} of an interface."""
    out = run(["wg", "show", dev, "allowed-ips"], check=False).stdout
    peers = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            peers[parts[0]] = [] if parts[1] == "(none)" else parts[1].split()
    return peers


def rx_bytes(dev):
    """{public key: bytes received from that peer} of an interface (authenticated traffic only)."""
    out = run(["wg", "show", dev, "transfer"], check=False).stdout
    rx = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            rx[parts[0]] = int(parts[1])
    return rx


def apply_spoke_peers(cfg):
    state = read_json(SPOKE_STATE, None)
    if not state:
        return 0
    for plane in PLANES:
        hub = state["planes"][plane]
        peer = cfg["node"]["planes"][plane]["peers"][0]
        wg_set_peer(plane, hub["publicKey"], peer["allowedIps"], peer.get("endpoint"), peer.get("persistentKeepalive"))
    return len(PLANES)


def revoked_nodes():
    data = read_json(ENROLL_DIR + "/revoked.json", {"revoked": []})
    return {r["node"] for r in data.get("revoked", [])}


def apply_hub_peers(cfg):
    peers = read_json(HUB_PEERS, {"nodes": {}})["nodes"]
    revoked = revoked_nodes()
    planned = {p["node"]: p for p in cfg["node"]["planes"]["wg1"]["peers"]}
    n = 0
    for node, keys in sorted(peers.items()):
        if node in revoked or node not in planned:
            continue
        for plane in PLANES:
            addr = [p for p in cfg["node"]["planes"][plane]["peers"] if p["node"] == node][0]["allowedIps"]
            wg_set_peer(plane, keys[plane], addr)
            n += 1
    return n
