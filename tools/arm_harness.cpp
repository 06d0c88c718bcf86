// The aarch64 side of tools/arm_emulator.py: runs fastrnn's core forward (training) and
// backward once, with the kernel set the emulator names, on the case it wrote into fr_io,
// and leaves every result there. A static executable; the emulator provides the few
// system calls that musl's start-up and malloc make.
//
// fr_io: 16 int64 of header, then from byte 4096 the arrays in the order of the take()
// calls below, each slot starting on a 64-byte boundary (arm_emulator.py lays them out
// alike). Header: cell (0 LSTM, 1 Elman), isa (0 generic, 3 neon), element bytes (4 or 8),
// T, B, I, H, peepholes (LSTM), relu (Elman), h0/c0 given, [10] status out (1 done, 2 a C++
// exception, 3 fr_io too small), [11] elements by which w_ih and w_hh start past their
// slot's line (rows off a vector boundary take other read paths).
#include <cstdint>
#include <exception>

#include "fastrnn/dispatch.h"
#include "fastrnn/lstm.h"
#include "fastrnn/rnn.h"

extern "C" {
alignas(64) unsigned char fr_io[16 << 20];
}

namespace {

using fastrnn::Dims;
using fastrnn::SeqView;

// Slots of fr_io, handed out in order; past its end, fit() turns false and the pointers
// are not to be used.
template <typename T>
struct Arrays {
    int64_t at = 4096;
    bool over = false;
    T* take(int64_t n, int64_t shift = 0) {
        const int64_t bytes = ((n + shift) * static_cast<int64_t>(sizeof(T)) + 63) / 64 * 64;
        over = over || at + bytes > static_cast<int64_t>(sizeof(fr_io));
        T* out = over ? reinterpret_cast<T*>(fr_io) : reinterpret_cast<T*>(fr_io + at) + shift;
        at += bytes;
        return out;
    }
    bool fit() const { return !over; }
};

// Time-major (t, b, k) views of [T, B, K] arrays.
template <typename T>
SeqView<T> seq(T* p, const Dims& d, int64_t K) {
    return SeqView<T>{p, static_cast<ptrdiff_t>(d.B * K), static_cast<ptrdiff_t>(K), 1};
}

// The backward arguments both cells share, from the forward's.
template <typename Back, typename Fwd, typename T>
void common_backward(Back& g, const Fwd& f, const Dims& d, T* h_seq, const T* dh_seq,
                     const T* dh_n, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db) {
    g.d = d;
    g.x = f.x;
    g.h0 = f.h0;
    g.ld_h0 = d.H;
    g.h_seq = seq<const T>(h_seq, d, d.H);
    g.dh_seq = seq(dh_seq, d, d.H);
    g.dh_n = dh_n;
    g.ld_dh_n = d.H;
    g.dx = seq(dx, d, d.I);
    g.dh0 = dh0;
    g.dw_ih = dw_ih;
    g.dw_hh = dw_hh;
    g.db = db;
}

// False when the case does not fit in fr_io (nothing computed).
template <typename T>
bool lstm(const int64_t* h) {
    namespace core = fastrnn::core;
    const Dims d{h[3], h[4], h[5], h[6]};
    const int64_t G = 4 * d.H, TB = d.T * d.B, BH = d.B * d.H;
    const bool peep = h[7] != 0, given = h[9] != 0;
    Arrays<T> a;
    const T* x = a.take(TB * d.I);
    const T* h0 = a.take(BH);
    const T* c0 = a.take(BH);
    const T* w_ih = a.take(G * d.I, h[11]);
    const T* w_hh = a.take(G * d.H, h[11]);
    const T* b = a.take(G);
    const T* peephole = a.take(3 * d.H);
    const T* dh_seq = a.take(TB * d.H);
    const T* dh_n = a.take(BH);
    const T* dc_n = a.take(BH);
    T* h_seq = a.take(TB * d.H);
    T* h_n = a.take(BH);
    T* c_n = a.take(BH);
    T* gates = a.take(TB * G);
    T* c_seq = a.take(TB * d.H);
    T* dx = a.take(TB * d.I);
    T* dh0 = a.take(BH);
    T* dc0 = a.take(BH);
    T* dw_ih = a.take(G * d.I);
    T* dw_hh = a.take(G * d.H);
    T* db = a.take(G);
    T* dpeephole = a.take(3 * d.H);
    if (!a.fit()) return false;

    const core::LstmWeights<T> w{w_ih, w_hh, b, peep ? peephole : nullptr};
    core::LstmForwardArgs<T> f;
    f.d = d;
    f.x = seq(x, d, d.I);
    f.h0 = given ? h0 : nullptr;
    f.ld_h0 = d.H;
    f.c0 = given ? c0 : nullptr;
    f.ld_c0 = d.H;
    f.w = w;
    f.h_seq = seq(h_seq, d, d.H);
    f.h_n = h_n;
    f.c_n = c_n;
    f.gates = gates;
    f.c_seq = c_seq;
    core::lstm_forward(f, 1);

    core::LstmBackwardArgs<T> g;
    common_backward(g, f, d, h_seq, dh_seq, dh_n, dx, dh0, dw_ih, dw_hh, db);
    g.c0 = f.c0;
    g.ld_c0 = d.H;
    g.w = w;
    g.gates = gates;
    g.c_seq = c_seq;
    g.dc_n = dc_n;
    g.ld_dc_n = d.H;
    g.dc0 = dc0;
    g.dpeephole = peep ? dpeephole : nullptr;
    core::lstm_backward(g, 1);
    return true;
}

template <typename T>
bool rnn(const int64_t* h) {
    namespace core = fastrnn::core;
    const Dims d{h[3], h[4], h[5], h[6]};
    const int64_t TB = d.T * d.B, BH = d.B * d.H;
    const bool given = h[9] != 0;
    const auto act = h[8] ? fastrnn::Nonlinearity::kRelu : fastrnn::Nonlinearity::kTanh;
    Arrays<T> a;
    const T* x = a.take(TB * d.I);
    const T* h0 = a.take(BH);
    const T* w_ih = a.take(d.H * d.I, h[11]);
    const T* w_hh = a.take(d.H * d.H, h[11]);
    const T* b = a.take(d.H);
    const T* dh_seq = a.take(TB * d.H);
    const T* dh_n = a.take(BH);
    T* h_seq = a.take(TB * d.H);
    T* h_n = a.take(BH);
    T* dx = a.take(TB * d.I);
    T* dh0 = a.take(BH);
    T* dw_ih = a.take(d.H * d.I);
    T* dw_hh = a.take(d.H * d.H);
    T* db = a.take(d.H);
    if (!a.fit()) return false;

    core::RnnForwardArgs<T> f;
    f.d = d;
    f.act = act;
    f.x = seq(x, d, d.I);
    f.h0 = given ? h0 : nullptr;
    f.ld_h0 = d.H;
    f.w_ih = w_ih;
    f.w_hh = w_hh;
    f.b = b;
    f.h_seq = seq(h_seq, d, d.H);
    f.h_n = h_n;
    core::rnn_forward(f, 1);

    core::RnnBackwardArgs<T> g;
    common_backward(g, f, d, h_seq, dh_seq, dh_n, dx, dh0, dw_ih, dw_hh, db);
    g.act = act;
    g.w_ih = w_ih;
    g.w_hh = w_hh;
    core::rnn_backward(g, 1);
    return true;
}

template <typename T>
bool run(const int64_t* h) {
    return h[0] == 0 ? lstm<T>(h) : rnn<T>(h);
}

}  // namespace

int main() {
    int64_t* h = reinterpret_cast<int64_t*>(fr_io);
    try {
        fastrnn::select_isa(h[1] == 3 ? "neon" : "generic");
        const bool fit = h[2] == 4 ? run<float>(h) : run<double>(h);
        h[10] = fit ? 1 : 3;
    } catch (const std::exception&) {
        h[10] = 2;
    }
    return 0;
}
