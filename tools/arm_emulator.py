"""Runs fastrnn's NEON kernels on an x86 machine: the core, built for aarch64, in an emulator.

tools/arm_harness.cpp with the core and both aarch64 kernel sets (neon, generic) is
compiled by clang from the `ziglang` package into a static aarch64 Linux executable
(musl). unicorn (QEMU's CPU emulator as a library) runs it; this module loads the ELF,
answers the few system calls that musl's start-up and malloc make, and passes each
case in and out through the harness's `fr_io` array. So the NEON path, which this machine
cannot run natively, is compared with the NumPy reference like every other ISA
(tests/test_arm_emulated.py). Needs the `cross` extra: pip install ".[cross]".

    python tools/arm_emulator.py    # builds, then runs one LSTM case on each kernel set
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = "aarch64-linux-musl"
ISA_CODE = {"generic": 0, "neon": 3}
PAGE = 4096


def build(out_dir: Path) -> Path:
    """Compiles and links the harness executable in out_dir (zig caches the objects)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cxx = [sys.executable, "-m", "ziglang", "c++", "-target", TARGET]
    zig = cxx + ["-std=c++17", "-O3", f"-I{ROOT / 'csrc'}"]  # -O3: as a Release build
    jobs = []
    for isa in ISA_CODE:
        for src in sorted((ROOT / "csrc" / "kernels").glob("*.cpp")):
            # As CMakeLists.txt compiles each kernel set: its own namespace, no contraction,
            # and no ISA flags (FASTRNN_ISA_FLAGS_neon is empty there): change both together.
            jobs.append((src, out_dir / f"{isa}-{src.stem}.o",
                         [f"-DFASTRNN_ISA_NS={isa}", f"-DFASTRNN_ISA_{isa.upper()}",
                          "-ffp-contract=off"]))
    core = sorted((ROOT / "csrc" / "core").glob("*.cpp")) + [ROOT / "csrc" / "dispatch.cpp"]
    for src in core + [ROOT / "tools" / "arm_harness.cpp"]:
        jobs.append((src, out_dir / f"core-{src.stem}.o", ["-DFASTRNN_BUILD_NEON"]))

    def compile_one(job):
        src, obj, flags = job
        done = subprocess.run(zig + flags + ["-c", str(src), "-o", str(obj)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling {src.name} for {TARGET} failed:\n{done.stderr}")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(compile_one, jobs))
    exe = out_dir / "harness.elf"
    done = subprocess.run(cxx + ["-static", "-o", str(exe)] + [str(j[1]) for j in jobs],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"linking the harness failed:\n{done.stderr}")
    return exe


def _up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


class Machine:
    """One emulated aarch64 process of the harness; run() can be called once."""

    BRK_BYTES = 64 << 20
    MMAP_BASE, MMAP_BYTES = 0x1_0000_0000, 1 << 30
    STACK_TOP, STACK_BYTES = 0x7F00_0000_0000, 8 << 20

    def __init__(self, exe: Path):
        from elftools.elf.elffile import ELFFile
        from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
        from unicorn.arm64_const import UC_ARM64_REG_CPACR_EL1

        self.uc = uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        top = 0
        with open(exe, "rb") as f:
            elf = ELFFile(f)
            symtab = elf.get_section_by_name(".symtab")
            io = next(s for s in symtab.iter_symbols() if s.name == "fr_io")
            self.io, self.io_bytes = io["st_value"], io["st_size"]
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD":
                    continue
                lo, hi = seg["p_vaddr"] & ~(PAGE - 1), _up(seg["p_vaddr"] + seg["p_memsz"])
                uc.mem_map(lo, hi - lo)  # zero-filled, so .bss needs no writing
                uc.mem_write(seg["p_vaddr"], seg.data())
                top = max(top, hi)
            self.entry = elf.header["e_entry"]
        self.brk_base = self.brk = top + 16 * PAGE
        uc.mem_map(self.brk_base, self.BRK_BYTES)
        self.mmap_next = self.MMAP_BASE
        uc.mem_map(self.MMAP_BASE, self.MMAP_BYTES)
        uc.mem_map(self.STACK_TOP - self.STACK_BYTES, self.STACK_BYTES)
        uc.reg_write(UC_ARM64_REG_CPACR_EL1, 3 << 20)  # FP and Advanced SIMD enabled at EL0
        uc.hook_add(UC_HOOK_INTR, self._syscall)
        self.exit_code = None

    def _syscall(self, uc, intno, user_data):
        from unicorn import arm64_const as r

        pc = uc.reg_read(r.UC_ARM64_REG_PC)
        if intno != 2:  # not an SVC: a trap (brk, udf) in the harness
            raise RuntimeError(f"arm_emulator: exception {intno} at pc {pc:#x}")
        nr = uc.reg_read(r.UC_ARM64_REG_X8)
        a0, a1, a2, a3 = (uc.reg_read(x) for x in (r.UC_ARM64_REG_X0, r.UC_ARM64_REG_X1,
                                                   r.UC_ARM64_REG_X2, r.UC_ARM64_REG_X3))
        if nr in (93, 94):  # exit, exit_group
            self.exit_code = a0
            uc.emu_stop()
            return
        if nr == 214:  # brk: grows within its region, else stays (musl then uses mmap)
            if self.brk_base <= a0 <= self.brk_base + self.BRK_BYTES:
                self.brk = a0
            ret = self.brk
        elif nr == 222:  # mmap, anonymous memory only; never unmapped (munmap: a no-op)
            MAP_FIXED, MAP_ANONYMOUS = 0x10, 0x20
            if not a3 & MAP_ANONYMOUS or a3 & MAP_FIXED:
                raise RuntimeError(f"arm_emulator: mmap with flags {a3:#x} is not emulated")
            n = _up(a1)
            if self.mmap_next + n > self.MMAP_BASE + self.MMAP_BYTES:
                ret = -12  # ENOMEM
            else:
                ret, self.mmap_next = self.mmap_next, self.mmap_next + n
        elif nr == 123:  # sched_getaffinity: one CPU
            uc.mem_write(a2, b"\x01" + bytes(7))
            ret = 8
        elif nr in (96, 172, 178):  # set_tid_address, getpid, gettid
            ret = 1
        elif nr == 29:  # ioctl: not a terminal
            ret = -25
        elif nr in (64, 66):  # write, writev: the harness prints nothing
            ret = -9  # EBADF
        elif nr in (98, 99, 134, 135, 215, 226, 233, 261):
            # futex, set_robust_list, rt_sigaction, rt_sigprocmask, munmap, mprotect,
            # madvise, prlimit64: nothing to do for one thread in a flat address space
            ret = 0
        else:
            raise RuntimeError(f"arm_emulator: system call {nr} at pc {pc:#x} is not emulated")
        uc.reg_write(r.UC_ARM64_REG_X0, ret & (2**64 - 1))

    def _start_stack(self) -> None:
        from unicorn.arm64_const import UC_ARM64_REG_SP

        # argc, argv, envp and the auxiliary vector musl's start-up reads: AT_PAGESZ and
        # AT_RANDOM (16 bytes for the stack protector's canary).
        base = self.STACK_TOP - PAGE
        self.uc.mem_write(base, bytes(range(16)) + b"harness\0")
        words = [1, base + 16, 0, 0, 6, PAGE, 25, base, 0, 0]
        sp = (base - 2 * PAGE) & ~15
        self.uc.mem_write(sp, struct.pack(f"<{len(words)}Q", *words))
        self.uc.reg_write(UC_ARM64_REG_SP, sp)

    def run(self, header: list[int], inputs: list[tuple[np.ndarray, int]],
            outputs: list[int], dtype, timeout_s: float = 300) -> list[np.ndarray]:
        """Runs main() on one case; returns the output arrays.

        inputs: (array, shift) in the harness's take() order, each array placed `shift`
        elements into its slot; outputs: element counts, in order after the inputs.
        """
        itemsize = np.dtype(dtype).itemsize
        slots = [(arr.size, shift) for arr, shift in inputs] + [(n, 0) for n in outputs]
        offsets, at = [], PAGE  # as Arrays::take in arm_harness.cpp
        for n, shift in slots:
            offsets.append(at + shift * itemsize)
            at += ((n + shift) * itemsize + 63) // 64 * 64
        if at > self.io_bytes:
            raise ValueError(f"arm_emulator: the case needs {at} bytes of fr_io, which holds "
                             f"{self.io_bytes}")
        self.uc.mem_write(self.io, struct.pack("<16q", *(header + [0] * (16 - len(header)))))
        for (arr, _), off in zip(inputs, offsets):
            self.uc.mem_write(self.io + off, np.ascontiguousarray(arr, dtype=dtype).tobytes())
        self._start_stack()
        self.uc.emu_start(self.entry, 0, timeout=int(timeout_s * 1e6))
        status = struct.unpack("<q", self.uc.mem_read(self.io + 80, 8))[0]
        if self.exit_code != 0 or status != 1:
            raise RuntimeError(f"harness: exit {self.exit_code}, status {status} (1: done, "
                               "2: a C++ exception, 3: fr_io too small)")
        return [np.frombuffer(bytes(self.uc.mem_read(self.io + off, n * itemsize)), dtype=dtype)
                for n, off in zip(outputs, offsets[len(inputs):])]


def _inputs(dtype, named: list[tuple[str, np.ndarray, tuple, int]]):
    """(array, shift) pairs for Machine.run, each array and shift checked."""
    out = []
    for name, arr, shape, shift in named:
        if not isinstance(shift, int) or not 0 <= shift < 16:
            raise ValueError(f"weights_off: want an int in [0, 16), got {shift!r}")
        if arr.shape != shape or arr.dtype != dtype:
            raise ValueError(f"{name}: want {shape} {np.dtype(dtype)}, got {arr.shape} {arr.dtype}")
        out.append((arr, shift))
    return out


def lstm(exe: Path, isa: str, x, h0, c0, w_ih, w_hh, b, peephole, dh_seq, dh_n, dc_n,
         weights_off: int = 0):
    """LSTM forward (training) and backward on the emulated core, time-major x [T, B, I].

    h0, c0: [B, H] or None; peephole: [3, H] or None. w_ih and w_hh start weights_off
    elements past a 64-byte line (rows off a vector boundary take other read paths).
    Returns a dict of the results.
    """
    T, B, I = x.shape
    H = w_hh.shape[1]
    dt = x.dtype
    given = h0 is not None
    zeros = np.zeros((B, H), dt)
    header = [0, ISA_CODE[isa], dt.itemsize, T, B, I, H, peephole is not None, 0, given, 0,
              weights_off]
    inputs = _inputs(dt, [
        ("x", x, (T, B, I), 0), ("h0", h0 if given else zeros, (B, H), 0),
        ("c0", c0 if given else zeros, (B, H), 0), ("w_ih", w_ih, (4 * H, I), weights_off),
        ("w_hh", w_hh, (4 * H, H), weights_off), ("b", b, (4 * H,), 0),
        ("peephole", np.zeros((3, H), dt) if peephole is None else peephole, (3, H), 0),
        ("dh_seq", dh_seq, (T, B, H), 0), ("dh_n", dh_n, (B, H), 0), ("dc_n", dc_n, (B, H), 0)])
    names = ["h_seq", "h_n", "c_n", "gates", "c_seq", "dx", "dh0", "dc0", "dw_ih", "dw_hh",
             "db", "dpeephole"]
    shapes = [(T, B, H), (B, H), (B, H), (T, B, 4 * H), (T, B, H), (T, B, I), (B, H), (B, H),
              (4 * H, I), (4 * H, H), (4 * H,), (3, H)]
    outs = Machine(exe).run(header, inputs, [int(np.prod(s)) for s in shapes], dt)
    return {n: o.reshape(s) for n, o, s in zip(names, outs, shapes)}


def rnn(exe: Path, isa: str, x, h0, w_ih, w_hh, b, dh_seq, dh_n, relu=False,
        weights_off: int = 0):
    """Elman forward and backward on the emulated core, time-major x [T, B, I]."""
    T, B, I = x.shape
    H = w_hh.shape[0]
    dt = x.dtype
    given = h0 is not None
    header = [1, ISA_CODE[isa], dt.itemsize, T, B, I, H, 0, int(relu), given, 0, weights_off]
    inputs = _inputs(dt, [
        ("x", x, (T, B, I), 0), ("h0", h0 if given else np.zeros((B, H), dt), (B, H), 0),
        ("w_ih", w_ih, (H, I), weights_off), ("w_hh", w_hh, (H, H), weights_off),
        ("b", b, (H,), 0), ("dh_seq", dh_seq, (T, B, H), 0), ("dh_n", dh_n, (B, H), 0)])
    names = ["h_seq", "h_n", "dx", "dh0", "dw_ih", "dw_hh", "db"]
    shapes = [(T, B, H), (B, H), (T, B, I), (B, H), (H, I), (H, H), (H,)]
    outs = Machine(exe).run(header, inputs, [int(np.prod(s)) for s in shapes], dt)
    return {n: o.reshape(s) for n, o, s in zip(names, outs, shapes)}


def main() -> None:
    rng = np.random.default_rng(0)
    T, B, I, H = 5, 2, 7, 9
    f = np.float32
    args = [rng.standard_normal(s).astype(f) for s in
            [(T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (3, H), (T, B, H),
             (B, H), (B, H)]]
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        res = {isa: lstm(exe, isa, *args) for isa in ISA_CODE}
    for name in res["neon"]:
        diff = np.max(np.abs(res["neon"][name] - res["generic"][name]))
        print(f"{name:10s} max |neon - generic| = {diff:.3g}")


if __name__ == "__main__":
    main()
