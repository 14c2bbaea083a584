#!/usr/bin/env bash
# What can be checked of docker/ (issue 7) on a machine without a Docker
# engine:
#   - docker-compose parses docker/compose.yaml, and the services are wired
#     as the issue asks (LTS HAProxy image, reference config unchanged,
#     environment names that haproxy.cfg knows, mounts that exist, ...)
#   - the Dockerfile: Debian 12 slim stages, non-root agent, STOPSIGNAL,
#     SPOP HEALTHCHECK, exec-form ENTRYPOINT (the agent is PID 1 and gets
#     "docker kill -s HUP"); every stage's apt-get package list resolves on
#     Debian 12 (apt-get --dry-run from an empty package state); the
#     runtime list covers every library the agent binary links against;
#     the build stage's COPY set is enough for "make"
#   - shellcheck on every shell script of the repository; hadolint when
#     installed (it is not packaged in Debian 12)
#   - the compose stack emulated on 127.0.0.1 with the same files: PKI by
#     docker/pki-init.sh, the agent with docker/agent-conf as uid 10001,
#     HAProxy with haproxy.cfg and the compose environment as uid 99,
#     docker/echo.cfg as the backend, then the compose "tour" command
#     (container paths and service names mapped to local ones)
# Building and running the images on an engine: test_docker_compose.sh.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
ROOT=$T_ROOT
DF=$ROOT/docker/Dockerfile
COMPOSE=$ROOT/docker/compose.yaml
AGENT_CONF=$ROOT/docker/agent-conf/mtls-spoa.conf
# uids of the containers' users: ours (Dockerfile) and the official
# haproxy image's (docker-library/haproxy: useradd --uid 99).
AGENT_UID=10001
HAPROXY_UID=99

# PASS/FAIL lines of the Python checks -> TAP lines here.
tap_from() {
	local line
	while IFS= read -r line; do
		case $line in
		"PASS "*) ok "${line#PASS }" ;;
		"FAIL "*) not_ok "${line#FAIL }" ;;
		*) diag "$line" ;;
		esac
	done <"$1"
}

# --- compose file -------------------------------------------------------
if ! command -v docker-compose >/dev/null; then
	not_ok "docker-compose is installed (make deps)"
elif out=$(env -u MTLS_DEMO_PORT -u HAPROXY_IMAGE_TAG docker-compose -f "$COMPOSE" config -q 2>&1); then
	ok "docker-compose -f docker/compose.yaml config -q"
	env -u MTLS_DEMO_PORT -u HAPROXY_IMAGE_TAG docker-compose -f "$COMPOSE" config >"$T_WORK/compose.yaml" 2>"$T_WORK/compose.err"
else
	not_ok "docker-compose -f docker/compose.yaml config -q"
	diag "$out"
fi

# --- Dockerfile and compose structure (Python: YAML and line parsing) ----
[ -f "$T_WORK/compose.yaml" ] || : >"$T_WORK/compose.yaml"
python3 - "$DF" "$T_WORK/compose.yaml" "$ROOT" "$T_WORK" >"$T_WORK/py.out" 2>&1 <<'EOF'
import json, os, re, shlex, sys

df_path, compose_path, root, work = sys.argv[1:5]

def check(cond, desc, why=""):
    print(("PASS " if cond else "FAIL ") + desc)
    if not cond and why:
        print(why)

# Dockerfile instructions: continuation lines joined, comment lines dropped
# (Docker drops them inside continuations too).
instrs = []
cur = ""
for raw in open(df_path):
    line = raw.rstrip("\n")
    if re.match(r"^\s*#", line) and not cur:
        continue
    if re.match(r"^\s*#", line):
        continue
    if line.endswith("\\"):
        cur += line[:-1] + " "
        continue
    cur += line
    if cur.strip():
        instrs.append(cur.strip())
    cur = ""

stages = []          # [name, image, [instructions]]
for ins in instrs:
    kw, _, rest = ins.partition(" ")
    kw = kw.upper()
    if kw == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", rest.strip(), re.I)
        stages.append([m.group(2) or str(len(stages)), m.group(1), []])
    elif stages:
        stages[-1][2].append((kw, rest.strip()))
names = [s[0] for s in stages]
check(len(stages) >= 2, "Dockerfile is multi-stage", "stages: %r" % names)
check(all(s[1] == "debian:12-slim" for s in stages),
      "every Dockerfile stage is FROM debian:12-slim",
      "stages: %r" % [(s[0], s[1]) for s in stages])
check(bool(stages) and stages[-1][0] == "runtime",
      "the last (default) stage is 'runtime'", "stages: %r" % names)

def apt_packages(stage):
    pkgs = []
    for kw, rest in stage[2]:
        if kw != "RUN":
            continue
        for seg in re.split(r"&&|;|\|\|", rest):
            toks = shlex.split(seg)
            if len(toks) >= 2 and toks[0] == "apt-get" and "install" in toks:
                pkgs += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
    return pkgs

stage = {s[0]: s for s in stages}
for s in stages:
    with open(os.path.join(work, "pkgs." + s[0]), "w") as f:
        f.write(" ".join(apt_packages(s)) + "\n")

rt = stage.get("runtime")
if rt:
    instr = {}
    for kw, rest in rt[2]:
        instr.setdefault(kw, []).append(rest)
    pk = apt_packages(rt)
    check(set(["libev4", "libssl3", "libinih1"]) <= set(pk),
          "runtime stage installs libev4 libssl3 libinih1", "packages: %r" % pk)
    bad = [p for p in pk if p.endswith("-dev") or p in ("build-essential", "gcc", "make", "pkg-config", "cc")]
    check(not bad, "runtime stage installs no build tool or -dev package", "found: %r" % bad)
    user = (instr.get("USER") or [""])[-1].split(":")[0]
    check(user not in ("", "0", "root"), "runtime stage runs as a non-root USER",
          "USER: %r" % user)
    check(user == "10001", "runtime USER is uid 10001 (this test runs the agent as that uid)",
          "USER: %r" % user)
    check(instr.get("STOPSIGNAL") == ["SIGTERM"], "STOPSIGNAL SIGTERM",
          "STOPSIGNAL: %r" % instr.get("STOPSIGNAL"))
    hc = " ".join(instr.get("HEALTHCHECK", []))
    check(re.search(r'CMD \["mtls-spoa",\s*"--probe",\s*"127\.0\.0\.1:12345"\]', hc) is not None,
          "HEALTHCHECK is mtls-spoa --probe 127.0.0.1:12345 (exec form)", "HEALTHCHECK: %r" % hc)
    to = re.search(r"--timeout=(\d+)s", hc)
    check(to is not None and int(to.group(1)) > 3,
          "HEALTHCHECK --timeout is above the probe's own 3 s timeout", "HEALTHCHECK: %r" % hc)
    ep = " ".join(instr.get("ENTRYPOINT", []))
    try:
        epv = json.loads(ep)
    except ValueError:
        epv = None
    check(epv == ["mtls-spoa"],
          "ENTRYPOINT is exec-form mtls-spoa (PID 1: docker kill -s HUP reaches the agent)",
          "ENTRYPOINT: %r" % ep)
    try:
        cmd = json.loads(" ".join(instr.get("CMD", [])))
    except ValueError:
        cmd = []
    check(cmd == ["-c", "/etc/mtls-spoa/mtls-spoa.conf", "-l", "0.0.0.0:12345"],
          "CMD: config /etc/mtls-spoa/mtls-spoa.conf, listening on 0.0.0.0:12345", "CMD: %r" % cmd)
    with open(os.path.join(work, "cmd"), "w") as f:
        f.write("\n".join(cmd) + "\n")
    check("12345" in " ".join(instr.get("EXPOSE", [])), "EXPOSE 12345")
    cps = [r for r in instr.get("COPY", []) if r.startswith("--from=")]
    check(any(r.startswith("--from=build ") and "mtls-spoa" in r for r in cps),
          "runtime stage copies only the agent binary from the build stage", "COPY: %r" % cps)

# Every COPY source from the context must exist in the repository (and the
# build stage's sources are recorded for the "make" check).
missing = []
for s in stages:
    srcs = []
    for kw, rest in s[2]:
        if kw != "COPY" or rest.startswith("--from="):
            continue
        toks = [t for t in shlex.split(rest) if not t.startswith("--")]
        for src in toks[:-1]:
            srcs.append(src)
            if not os.path.exists(os.path.join(root, src)):
                missing.append(src)
    with open(os.path.join(work, "copy." + s[0]), "w") as f:
        f.write("\n".join(srcs) + "\n")
check(not missing, "every Dockerfile COPY source exists in the repository", "missing: %r" % missing)
# ... and is let through by docker/Dockerfile.dockerignore (an allowlist).
ign = os.path.join(os.path.dirname(df_path), "Dockerfile.dockerignore")
allowed = set()
if os.path.exists(ign):
    allowed = {l.strip()[1:].rstrip("/") for l in open(ign) if l.strip().startswith("!")}
blocked = sorted({src for s in stages for kw, rest in s[2]
                  if kw == "COPY" and not rest.startswith("--from=")
                  for src in [t for t in shlex.split(rest) if not t.startswith("--")][:-1]
                  if src.rstrip("/") not in allowed})
check(os.path.exists(ign) and not blocked,
      "docker/Dockerfile.dockerignore lets every COPY source through", "not allowed: %r" % blocked)
# docker-compose v1 (legacy builder) reads only the context root's
# .dockerignore: it must say the same, or .git goes to the daemon.
def patterns(path):
    return [l.strip() for l in open(path) if l.strip() and not l.lstrip().startswith("#")] if os.path.exists(path) else None
rootign = os.path.join(root, ".dockerignore")
check(patterns(rootign) is not None and patterns(rootign) == patterns(ign),
      ".dockerignore at the root has the patterns of docker/Dockerfile.dockerignore",
      "root: %r docker/: %r" % (patterns(rootign), patterns(ign)))

# compose (as normalised by docker-compose config: paths made absolute)
try:
    import yaml
    comp = yaml.safe_load(open(compose_path)) or {}
except Exception as e:  # no parse, no structure checks
    check(False, "compose structure checks (docker-compose config output)", repr(e))
    sys.exit(0)
svc = comp.get("services", {})
check(set(["pki", "agent", "echo", "haproxy", "tour"]) <= set(svc),
      "compose services pki, agent, echo, haproxy, tour", "services: %r" % sorted(svc))

def vols(name):
    out = []
    for v in svc.get(name, {}).get("volumes", []):
        if isinstance(v, dict):
            out.append((v.get("source"), v.get("target"), bool(v.get("read_only"))))
        else:
            parts = v.split(":")
            out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out

hap = svc.get("haproxy", {})
img = hap.get("image", "")
check(re.match(r"^haproxy:3\.(0|2)([.-]|$)", img) is not None,
      "haproxy service uses the official image pinned to a 3.x LTS tag (3.0 or 3.2)", "image: %r" % img)
check(svc.get("echo", {}).get("image") == img, "echo backend uses the same haproxy image",
      "echo image: %r" % svc.get("echo", {}).get("image"))
ports = hap.get("ports", [])
pub = [(p.get("published"), p.get("target")) if isinstance(p, dict) else tuple(p.split("/")[0].split(":")[-2:]) for p in ports]
check(any(str(a) == "8443" and str(b) == "8443" for a, b in pub), "port 8443 published (MTLS_DEMO_PORT unset)", "ports: %r" % ports)
# The demo sends verdict headers: never on every interface.
hosts = [p.get("host_ip") if isinstance(p, dict) else (p.split(":")[0] if p.count(":") == 2 else None) for p in ports]
check(bool(ports) and all(h == "127.0.0.1" for h in hosts), "haproxy's port is published on 127.0.0.1 only",
      "ports: %r" % ports)
hv = vols("haproxy")
conf_dir = os.path.join(root, "haproxy-conf")
check(any(os.path.realpath(s or "") == conf_dir and t == "/usr/local/etc/haproxy" and ro for s, t, ro in hv),
      "haproxy runs haproxy-conf/ unchanged (mounted read-only at /usr/local/etc/haproxy)", "volumes: %r" % hv)
check(not hap.get("command") and not hap.get("entrypoint"),
      "haproxy service keeps the image's command (haproxy -f /usr/local/etc/haproxy/haproxy.cfg)")
env = hap.get("environment", {})
if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
cfg = open(os.path.join(conf_dir, "haproxy.cfg")).read()
known = set(re.findall(r"presetenv\s+(MTLS_\w+)", cfg)) | set(re.findall(r"defined\((MTLS_\w+)\)", cfg))
unknown = sorted(k for k in env if k not in known)
check(not unknown and len(env) > 0, "every haproxy environment variable is one haproxy.cfg reads",
      "unknown: %r (haproxy.cfg knows %r)" % (unknown, sorted(known)))
agent_addr = str(env.get("MTLS_AGENT_ADDR", ""))
check(agent_addr == "agent:12345", "MTLS_AGENT_ADDR points at the agent service (agent:12345)", repr(agent_addr))
check(str(env.get("MTLS_BACKEND_ADDR", "")).startswith("echo:"), "MTLS_BACKEND_ADDR points at the echo service")
with open(os.path.join(work, "haproxy.env"), "w") as f:
    for k, v in sorted(env.items()):
        f.write("%s=%s\n" % (k, v))

ag = svc.get("agent", {})
check(ag.get("build", {}).get("target") == "runtime" and "runtime" in stage,
      "agent service builds the Dockerfile's runtime stage")
check(str(ag.get("user", "")) in ("", str(10001)), "agent service does not override the non-root user",
      "user: %r" % ag.get("user"))
av = vols("agent")
check(any(t == "/etc/mtls-spoa" and ro and os.path.realpath(s or "") == os.path.join(root, "docker", "agent-conf")
          for s, t, ro in av),
      "agent config: docker/agent-conf mounted read-only at /etc/mtls-spoa (default of MTLS_CONF_DIR)",
      "volumes: %r" % av)
hc = ag.get("healthcheck", {}).get("test", [])
check(hc == ["CMD", "mtls-spoa", "--probe", "127.0.0.1:12345"], "agent healthcheck is the SPOP probe", repr(hc))
dep = hap.get("depends_on", {})
check(isinstance(dep, dict) and dep.get("agent", {}).get("condition") == "service_healthy"
      and dep.get("pki", {}).get("condition") == "service_completed_successfully",
      "haproxy starts after the PKI exists and the agent is healthy", repr(dep))
b = svc.get("pki", {}).get("build", {})
check(b.get("target") in stage, "pki service builds a Dockerfile stage (%s)" % b.get("target"))
tools = svc.get("pki", {}).get("image")
check(bool(tools) and svc.get("tour", {}).get("image") == tools and not svc.get("tour", {}).get("build"),
      "tour runs the image pki builds (one demo-tools build, one name)",
      "pki image %r, tour image %r build %r" % (tools, svc.get("tour", {}).get("image"), svc.get("tour", {}).get("build")))
for one in ("pki", "tour"):
    check(any(t == "/pki" for s, t, ro in vols(one)), "%s service mounts the PKI volume at /pki" % one)
for one in ("agent", "haproxy"):
    check(any(t == "/pki" and ro for s, t, ro in vols(one)), "%s mounts the PKI volume read-only" % one)
pki_cmd = svc.get("pki", {}).get("command", [])
check(pki_cmd == ["bash", "docker/pki-init.sh", "/pki"], "pki service runs docker/pki-init.sh /pki", repr(pki_cmd))
tour = svc.get("tour", {}).get("command", [])
bind = str(env.get("MTLS_BIND", ""))
check(tour[:2] == ["bash", "tests/demo/demo.sh"] and "--check" in tour
      and "haproxy:" + bind.lstrip(":") in tour,
      "tour service runs demo.sh --check --remote against the haproxy service's MTLS_BIND port",
      "tour: %r MTLS_BIND: %r" % (tour, bind))
with open(os.path.join(work, "tour.cmd"), "w") as f:
    f.write("\n".join(tour) + "\n")
# Every bind-mounted host path exists.
srcs = [s for n in svc for s, t, ro in vols(n) if s and s.startswith("/")]
check(srcs and all(os.path.exists(s) for s in srcs), "every bind-mounted host path exists",
      "missing: %r" % [s for s in srcs if not os.path.exists(s)])
EOF
py_rc=$?
tap_from "$T_WORK/py.out"
# A crash must not pass as "no failure".
[ "$py_rc" = 0 ] || not_ok "Dockerfile/compose checks ran to the end (python exit $py_rc)"

# --- package lists resolve on Debian 12 ---------------------------------
if ! grep -q '^12\.' /etc/debian_version 2>/dev/null; then
	not_ok "this host is Debian 12 (the apt-get --dry-run checks need its package lists)"
else
	for f in "$T_WORK"/pkgs.*; do
		[ -e "$f" ] || continue
		st=${f##*/pkgs.}
		read -r -a pkgs <"$f"
		if [ "${#pkgs[@]}" -eq 0 ]; then
			not_ok "stage $st: an apt-get install package list was found"
			continue
		fi
		# An empty dpkg status: resolve as on a bare image, not against
		# what this host happens to have installed.
		if out=$(apt-get install --dry-run --no-install-recommends -qq \
			-o Dir::State::status=/dev/null "${pkgs[@]}" 2>&1); then
			ok "stage $st: apt-get install --dry-run ${pkgs[*]} resolves on Debian 12"
		else
			not_ok "stage $st: apt-get install --dry-run ${pkgs[*]} resolves on Debian 12"
			diag "$(printf '%s\n' "$out" | grep -E '^E:|^ ' | head -n 10)"
			diag "(stale package lists? apt-get update)"
		fi
	done
fi

# --- the runtime packages cover what the binary links against -----------
if [ ! -x "$T_AGENT_BIN" ]; then
	not_ok "agent binary $T_AGENT_BIN exists (run make first)"
elif ldd "$T_AGENT_BIN" | grep -qE 'lib(a|ub|l|t)san'; then
	ok "runtime packages cover the agent's shared libraries # SKIP sanitizer build"
else
	read -r -a rt <"$T_WORK/pkgs.runtime" 2>/dev/null || rt=()
	need=$(ldd "$T_AGENT_BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
		while read -r lib; do
			dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null
		done | cut -d: -f1 | sort -u)
	# libc6 and libgcc-s1 are in every Debian base image (required).
	missing=
	for p in $need; do
		case " ${rt[*]} libc6 libgcc-s1 " in
		*" $p "*) ;;
		*) missing="$missing $p" ;;
		esac
	done
	if [ -n "$need" ] && [ -z "$missing" ]; then
		ok "runtime packages cover the agent's shared libraries ($(tr '\n' ' ' <<<"$need"))"
	else
		not_ok "runtime packages cover the agent's shared libraries"
		diag "linked from: $(tr '\n' ' ' <<<"$need"); not in the runtime stage:${missing:- (ldd found nothing)}"
	fi
fi

# --- the build stage's COPY set is enough for make ----------------------
src=$T_WORK/build-src
mkdir -p "$src"
copied=1
while read -r p; do
	[ -n "$p" ] || continue
	mkdir -p "$src/$(dirname "$p")"
	cp -r "$ROOT/${p%/}" "$src/$(dirname "$p")/" || copied=0
done <"$T_WORK/copy.build"
if [ "$copied" = 1 ] && out=$(make -C "$src" BUILD="$src/out" -j4 2>&1) &&
	"$src/out/mtls-spoa" --version >/dev/null; then
	ok "build stage: make succeeds with only the files the Dockerfile copies"
else
	not_ok "build stage: make succeeds with only the files the Dockerfile copies"
	diag "$(printf '%s\n' "${out:-}" | tail -n 15)"
fi
rm -rf "$src"

# --- shellcheck / hadolint ----------------------------------------------
if ! command -v shellcheck >/dev/null; then
	not_ok "shellcheck is installed (make deps)"
else
	# Tracked and new (not ignored) files: *.sh, and any file starting
	# with a sh/bash shebang. Outside a git checkout: every *.sh.
	if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		mapfile -t files < <(git -C "$ROOT" ls-files --cached --others --exclude-standard | sort -u)
	else
		mapfile -t files < <(cd "$ROOT" && find . -name '*.sh' -not -path './build*' | sed 's|^\./||')
	fi
	n=0
	for f in "${files[@]}"; do
		[ -f "$ROOT/$f" ] || continue
		case $f in
		*.sh) ;;
		*) head -n 1 "$ROOT/$f" 2>/dev/null | grep -qE '^#!.*[/ ](ba)?sh( |$)' || continue ;;
		esac
		n=$((n + 1))
		# -x from the root: "# shellcheck source=tests/..." paths resolve.
		if out=$(cd "$ROOT" && shellcheck -x "$f" 2>&1); then
			ok "shellcheck $f"
		else
			not_ok "shellcheck $f"
			diag "$out"
		fi
	done
	[ "$n" -gt 0 ] || not_ok "shellcheck found scripts to check"
fi
if command -v hadolint >/dev/null; then
	if out=$(hadolint "$DF" 2>&1); then ok "hadolint docker/Dockerfile"; else
		not_ok "hadolint docker/Dockerfile"
		diag "$out"
	fi
else
	ok "hadolint docker/Dockerfile # SKIP hadolint not installed (not packaged in Debian 12)"
fi

# --- agent config: the reference, paths into the volume ------------------
# Normalised (comments, blank lines, spacing dropped), the compose demo's
# config must be the reference with CA/CRL paths under /pki, listen
# 0.0.0.0:12345 and the generated admin token file: nothing else may drift.
norm() { sed -E -e 's/[[:space:]]*;.*$//' -e 's/[[:space:]]+/ /g' -e 's/ $//' -e '/^$/d' "$1"; }
norm "$ROOT/haproxy-conf/mtls-spoa.conf" |
	sed -E -e 's#^(file|crl) = ([^/])#\1 = /pki/\2#' -e 's#^listen = .*#listen = 0.0.0.0:12345#' \
		>"$T_WORK/ref.norm"
norm "$AGENT_CONF" | sed '\#^admin-token-file = /pki/admin-tokens$#d' >"$T_WORK/docker.norm"
if out=$(diff -u "$T_WORK/ref.norm" "$T_WORK/docker.norm"); then
	ok "docker/agent-conf/mtls-spoa.conf = haproxy-conf/mtls-spoa.conf with paths in /pki"
else
	not_ok "docker/agent-conf/mtls-spoa.conf = haproxy-conf/mtls-spoa.conf with paths in /pki"
	diag "$out"
fi

# --- the PKI service ----------------------------------------------------
PKI=$T_WORK/pki
chmod 755 "$T_WORK" # the emulated containers' users must reach the PKI
if [ "$(id -u)" = 0 ]; then
	pki_uid=$HAPROXY_UID
	pki_gid=$HAPROXY_UID
	tok_uid=$AGENT_UID
else
	pki_uid=$(id -u)
	pki_gid=$(id -g)
	tok_uid=$pki_uid
fi
if out=$(HAPROXY_UID=$pki_uid HAPROXY_GID=$pki_gid AGENT_UID=$tok_uid AGENT_GID=$tok_uid \
	"$ROOT/docker/pki-init.sh" "$PKI" 2>&1); then
	ok "docker/pki-init.sh writes the PKI"
else
	not_ok "docker/pki-init.sh writes the PKI"
	diag "$out"
fi
check_eq "server.pem belongs to the haproxy user, mode 600" \
	"$(stat -c '%u:%g %a' "$PKI/server.pem" 2>/dev/null)" "$pki_uid:$pki_gid 600"
check_eq "admin-tokens: one generated demo token, the agent user's, mode 600" \
	"$(stat -c '%u:%g %a' "$PKI/admin-tokens" 2>/dev/null) $(grep -cE '^demo:[0-9a-f]{48}$' "$PKI/admin-tokens" 2>/dev/null)" \
	"$tok_uid:$tok_uid 600 1"
# A second run ("docker compose up" on a running stack) keeps the PKI the
# agent and HAProxy loaded.
sum1=$(cat "$PKI"/*.pem 2>/dev/null | sha256sum)
out=$(HAPROXY_UID=$pki_uid HAPROXY_GID=$pki_gid AGENT_UID=$tok_uid AGENT_GID=$tok_uid \
	"$ROOT/docker/pki-init.sh" "$PKI" 2>&1)
rc=$?
check_eq "docker/pki-init.sh keeps a complete, valid PKI on a second run" \
	"$rc $(cat "$PKI"/*.pem 2>/dev/null | sha256sum) ${out%% (*}" "0 $sum1 pki-init: keeping the PKI in $PKI"
unreadable=
for f in $(sed -nE 's#^(file|crl) *= */pki/([^ ;]+).*#\2#p' "$AGENT_CONF") placeholder-ca.pem; do
	perm=$(stat -c '%A' "$PKI/$f" 2>/dev/null) || { unreadable="$unreadable $f(missing)"; continue; }
	[ "${perm:7:1}" = r ] || unreadable="$unreadable $f($perm)"
done
check_eq "CA bundles, CRL and placeholder CA are world-readable (agent uid $AGENT_UID, haproxy uid 99)" \
	"${unreadable:-none}" none

# --- configs as the containers see them --------------------------------
# The admin listener moves to a free port too: parallel runs must not meet.
ADMIN_PORT=$(t_free_port)
sed -e "s#/pki/#$PKI/#" -e "s#^admin-listen = [^ ]*#admin-listen = 127.0.0.1:$ADMIN_PORT#" \
	"$AGENT_CONF" >"$PKI/agent-docker.conf"
cp "$ROOT/haproxy-conf/mtls-spoa.conf" "$PKI/mtls-spoa.conf"
got=$("$T_AGENT_BIN" -c "$PKI/agent-docker.conf" --check 2>&1)
want=$("$T_AGENT_BIN" -c "$PKI/mtls-spoa.conf" --check 2>&1)
if [[ $want == OK:* ]] && [ "$got" = "$want" ]; then
	ok "the compose agent config loads like the reference ($got)"
else
	not_ok "the compose agent config loads like the reference"
	diag "docker: $got"
	diag "reference: $want"
fi
if out=$("$T_HAPROXY" -c -f "$ROOT/docker/echo.cfg" 2>&1); then
	ok "haproxy -c docker/echo.cfg"
else
	not_ok "haproxy -c docker/echo.cfg"
	diag "$out"
fi

# --- the compose stack, emulated on 127.0.0.1 ---------------------------
# Same files and environment as compose.yaml; container paths and service
# names are mapped to local ones. When root, the agent runs as uid 10001
# and HAProxy as uid 99, as in their images, so file permissions count.
# Command prefixes that switch to the containers' uids (setpriv execs,
# so $! is the server's own pid).
AS_AGENT=()
AS_HAPROXY=()
if [ "$(id -u)" = 0 ]; then
	AS_AGENT=(setpriv --reuid "$AGENT_UID" --regid "$AGENT_UID" --clear-groups --)
	AS_HAPROXY=(setpriv --reuid "$HAPROXY_UID" --regid "$HAPROXY_UID" --clear-groups --)
fi
stack_pids=()
stack_stop() {
	local p
	for p in "${stack_pids[@]}"; do t_stop_pid "$p"; done
	stack_pids=()
}
trap 'stack_stop; t_cleanup' EXIT

if [ ! -x "$T_AGENT_BIN" ]; then
	not_ok "compose emulation: agent binary exists"
	t_finish
	exit $?
fi
AGENT_PORT=$(t_free_port)
ECHO_PORT=$(t_free_port)
HTTPS_PORT=$(t_free_port)
# The image's CMD with -l mapped to loopback.
mapfile -t cmd <"$T_WORK/cmd"
for i in "${!cmd[@]}"; do
	case ${cmd[$i]} in
	/etc/mtls-spoa/mtls-spoa.conf) cmd[i]=$PKI/agent-docker.conf ;;
	0.0.0.0:12345) cmd[i]=127.0.0.1:$AGENT_PORT ;;
	esac
done
"${AS_AGENT[@]}" "$T_AGENT_BIN" "${cmd[@]}" >>"$T_WORK/agent.log" 2>&1 &
T_AGENT_PID=$!
sed "s#^\tbind :8080#\tbind 127.0.0.1:$ECHO_PORT#" "$ROOT/docker/echo.cfg" >"$T_WORK/echo.cfg"
"${AS_HAPROXY[@]}" "$T_HAPROXY" -db -f "$T_WORK/echo.cfg" >>"$T_WORK/echo.log" 2>&1 &
stack_pids+=($!)
(
	while IFS='=' read -r k v; do
		v=${v//\/pki\//$PKI/}
		v=${v//\/usr\/local\/etc\/haproxy\//$ROOT/haproxy-conf/}
		v=${v/#agent:12345/127.0.0.1:$AGENT_PORT}
		v=${v/#echo:8080/127.0.0.1:$ECHO_PORT}
		[ "$k" = MTLS_BIND ] && v=127.0.0.1:$HTTPS_PORT
		export "${k?}=$v"
	done <"$T_WORK/haproxy.env"
	exec "${AS_HAPROXY[@]}" "$T_HAPROXY" -db -f "$ROOT/haproxy-conf/haproxy.cfg"
) >>"$T_WORK/haproxy.log" 2>&1 &
stack_pids+=($!)

if t_wait_port "$AGENT_PORT" 50 && t_wait_port "$ECHO_PORT" 50 && t_wait_port "$HTTPS_PORT" 50 &&
	t_pid_alive "$T_AGENT_PID"; then
	ok "compose emulation: agent (uid $AGENT_UID), echo and haproxy (uid 99) start"
else
	not_ok "compose emulation: agent (uid $AGENT_UID), echo and haproxy (uid 99) start"
	diag "$(tail -n 20 "$T_WORK/agent.log" "$T_WORK/echo.log" "$T_WORK/haproxy.log" 2>&1)"
	# The rest needs the stack: one failure is enough, not a 60 s wait.
	stack_stop
	t_finish
	exit 1
fi
# The health check command of the image, on the mapped port.
if out=$("$T_AGENT_BIN" --probe "127.0.0.1:$AGENT_PORT" 2>&1); then
	ok "HEALTHCHECK command (mtls-spoa --probe) passes against the running agent"
else
	not_ok "HEALTHCHECK command (mtls-spoa --probe) passes against the running agent"
	diag "$out"
fi

# The tour, as the compose service runs it.
mapfile -t tour <"$T_WORK/tour.cmd"
for i in "${!tour[@]}"; do
	case ${tour[$i]} in
	haproxy:*) tour[i]=localhost:$HTTPS_PORT ;;
	/pki) tour[i]=$PKI ;;
	esac
done
start=$SECONDS
(cd "$ROOT" && timeout 100 "${tour[@]}") >"$T_WORK/tour.out" 2>&1
rc=$?
np=$(grep -c '^ok ' "$T_WORK/tour.out")
nf=$(grep -c '^not ok ' "$T_WORK/tour.out")
if [ "$rc" = 0 ] && [ "$nf" = 0 ] && [ "$np" -ge 10 ]; then
	ok "compose tour command (${tour[*]:2}) passes: $np checks in $((SECONDS - start)) s"
else
	not_ok "compose tour command passes (exit $rc, $np ok, $nf not ok)"
	diag "$(tail -n 40 "$T_WORK/tour.out")"
	diag "$(tail -n 10 "$T_WORK/haproxy.log")"
fi
if grep -q 'Client-Cert: :MII' "$T_WORK/tour.out"; then
	ok "the echo backend shows the forwarded Client-Cert"
else
	not_ok "the echo backend shows the forwarded Client-Cert"
fi
if grep -Eq '^<4>.*mtls_action=log mtls_result=expired' "$T_WORK/haproxy.log"; then
	ok "HAProxy logs the log-mode request at warning level (docker compose logs haproxy)"
else
	not_ok "HAProxy logs the log-mode request at warning level"
	diag "$(tail -n 5 "$T_WORK/haproxy.log")"
fi

# SIGHUP as "docker kill -s HUP" delivers it: to the agent process.
kill -HUP "$T_AGENT_PID"
for _ in $(seq 50); do
	grep -q 'reloaded' "$T_WORK/agent.log" && break
	sleep 0.1
done
if grep -q "reloaded $PKI/agent-docker.conf" "$T_WORK/agent.log"; then
	ok "SIGHUP reloads the mounted config (as uid $AGENT_UID)"
else
	not_ok "SIGHUP reloads the mounted config"
	diag "$(tail -n 5 "$T_WORK/agent.log")"
fi

stack_stop
t_finish
