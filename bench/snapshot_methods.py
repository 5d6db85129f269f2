#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Time QEMU 7.2's ways to save and restore a microvm (docs/snapshots.md).

Boots the project kernel + initramfs with busybox as init (rdinit=/bin/sh),
the devices a VoidBox VM has (virtio-serial port, virtio-rng, an unmounted
9p export), then for each method: save (stop + migrate), restore to
`running`; prints times and sizes.  Usage: snapshot_methods.py KERNEL INITRAMFS [MIB] [RUNS]
"""
import json, os, socket, subprocess, sys, tempfile, time

KERNEL, INITRD = sys.argv[1], sys.argv[2]
MIB = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
D = tempfile.mkdtemp(prefix="vb-snapm-")

def qmp_connect(path, timeout=20):
    end = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); break
        except OSError:
            if time.time() > end: raise
            time.sleep(0.005)
    f = s.makefile("rw")
    json.loads(f.readline())
    q = lambda cmd, **a: cmd_(f, cmd, a)
    q("qmp_capabilities")
    return s, q

def cmd_(f, cmd, args):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            if "error" in r: raise RuntimeError(f"{cmd}: {r['error']}")
            return r["return"]

def argv(tag, mem, incoming=None):
    a = ["qemu-system-x86_64", "-M", "microvm,acpi=off" + (",memory-backend=ram" if mem else ""),
         "-accel", "tcg", "-cpu", "max", "-nodefaults", "-no-user-config", "-display", "none",
         "-m", str(MIB), "-smp", "1", "-kernel", KERNEL, "-initrd", INITRD,
         "-append", "console=ttyS0 quiet panic=-1 reboot=t acpi=off 8250.nr_uarts=1 no_timer_check rdinit=/bin/sh",
         "-serial", "null", "-qmp", f"unix:{D}/{tag}.qmp,server=on,wait=off",
         "-chardev", f"socket,id=c,path={D}/ctl.sock", "-device", "virtio-serial-device,max_ports=2",
         "-device", "virtserialport,chardev=c,name=org.voidbox.control", "-device", "virtio-rng-device",
         "-fsdev", f"local,id=fs0,path={D},security_model=mapped-xattr,readonly=on",
         "-device", "virtio-9p-device,fsdev=fs0,mount_tag=vbm0"]
    if mem:
        a += ["-object", f"memory-backend-file,id=ram,size={MIB}M,mem-path={mem[0]},share={mem[1]}"]
    if incoming:
        a += ["-incoming", incoming]
    return a

def wait_status(q, want, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if q("query-status")["status"] == want: return
        time.sleep(0.002)
    raise RuntimeError("status never " + want)

def wait_migrate(q):
    while True:
        st = q("query-migrate").get("status")
        if st == "completed": return
        if st == "failed": raise RuntimeError("migration failed")
        time.sleep(0.002)

def run(method):
    ctl = socket.socket(socket.AF_UNIX); path = f"{D}/ctl.sock"
    if os.path.exists(path): os.unlink(path)
    ctl.bind(path); ctl.listen(1)
    state, ram = f"{D}/{method}.state", f"{D}/{method}.ram"
    mem = (ram, "on") if method in ("file-ram",) else None
    caps = []
    if method == "file-ram": caps = [{"capability": "x-ignore-shared", "state": True}]
    if method == "compress": caps = [{"capability": "compress", "state": True}]
    t0 = time.time()
    p = subprocess.Popen(argv("boot", mem)); s, q = qmp_connect(f"{D}/boot.qmp")
    c, _ = ctl.accept()
    time.sleep(3.0)  # booted to the shell (~1.1 s under TCG) with margin
    if caps: q("migrate-set-capabilities", capabilities=caps)
    t1 = time.time(); q("stop")
    q("migrate", uri=f"exec:cat > {state}"); wait_migrate(q)
    save = time.time() - t1
    p.kill(); p.wait(); c.close(); s.close()
    size = os.path.getsize(state); rsize = os.stat(ram).st_blocks * 512 if mem else 0
    res = []
    for _ in range(RUNS):
        c2 = None
        t2 = time.time()
        if caps:  # the destination needs the same capabilities before it loads
            p2 = subprocess.Popen(argv("rest", (ram, "off") if mem else None, "defer")); s2, q2 = qmp_connect(f"{D}/rest.qmp")
            q2("migrate-set-capabilities", capabilities=caps)
            q2("migrate-incoming", uri=f"exec:cat {state}")
        else:
            p2 = subprocess.Popen(argv("rest", None, f"exec:cat {state}")); s2, q2 = qmp_connect(f"{D}/rest.qmp")
        c2, _ = ctl.accept()
        wait_status(q2, "paused")
        q2("cont"); wait_status(q2, "running")
        res.append(time.time() - t2)
        rss = int([l for l in open(f"/proc/{p2.pid}/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
        time.sleep(0.3); ok = p2.poll() is None
        p2.kill(); p2.wait(); s2.close(); c2.close()
    ctl.close()
    print(f"{method:9s} mem={MIB}MiB save={save*1000:.0f}ms state={size/1e6:.1f}MB ram-file-on-disk={rsize/1e6:.0f}MB "
          f"restore-to-running={' '.join('%.0f' % (r*1000) for r in res)}ms rss={rss}MiB alive={ok}")

for m in (sys.argv[5].split(",") if len(sys.argv) > 5 else ["plain", "file-ram", "compress"]):
    try: run(m)
    except Exception as e: print(m, "FAILED:", e)
os.system(f"rm -rf {D}")
