// The aarch64 side of tools/arm_emulator.py: runs fastrnn's core forward (training) and
// backward once, with the kernel set the emulator names, on the case it wrote into fr_io,
// and leaves every result there. A static executable; the emulator provides the few
// system calls that musl's start-up and malloc make.
//
// fr_io: 16 int64 of header, then from byte 4096 the arrays in the order of the take()
// calls below, each starting on a 64-byte boundary (arm_emulator.py lays them out alike).
// Header: cell (0 LSTM, 1 Elman), isa (0 generic, 3 neon), element bytes (4 or 8), T, B, I,
// H, peepholes (LSTM), relu (Elman), h0/c0 given; out: [10] = 1 when done, 2 on an error.
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

template <typename T>
struct Arrays {
    unsigned char* p = fr_io + 4096;
    T* take(int64_t n) {
        T* out = reinterpret_cast<T*>(p);
        p += (n * static_cast<int64_t>(sizeof(T)) + 63) / 64 * 64;
        return out;
    }
};

// Time-major (t, b, k) views of [T, B, K] arrays.
template <typename T>
SeqView<T> seq(T* p, const Dims& d, int64_t K) {
    return SeqView<T>{p, static_cast<ptrdiff_t>(d.B * K), static_cast<ptrdiff_t>(K), 1};
}

template <typename T>
void lstm(const int64_t* h) {
    namespace core = fastrnn::core;
    const Dims d{h[3], h[4], h[5], h[6]};
    const int64_t G = 4 * d.H, TB = d.T * d.B, BH = d.B * d.H;
    const bool peep = h[7] != 0, given = h[9] != 0;
    Arrays<T> a;
    const T* x = a.take(TB * d.I);
    const T* h0 = a.take(BH);
    const T* c0 = a.take(BH);
    const T* w_ih = a.take(G * d.I);
    const T* w_hh = a.take(G * d.H);
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
    g.d = d;
    g.x = f.x;
    g.h0 = f.h0;
    g.ld_h0 = d.H;
    g.c0 = f.c0;
    g.ld_c0 = d.H;
    g.w = w;
    g.h_seq = seq<const T>(h_seq, d, d.H);
    g.gates = gates;
    g.c_seq = c_seq;
    g.dh_seq = seq(dh_seq, d, d.H);
    g.dh_n = dh_n;
    g.ld_dh_n = d.H;
    g.dc_n = dc_n;
    g.ld_dc_n = d.H;
    g.dx = seq(dx, d, d.I);
    g.dh0 = dh0;
    g.dc0 = dc0;
    g.dw_ih = dw_ih;
    g.dw_hh = dw_hh;
    g.db = db;
    g.dpeephole = peep ? dpeephole : nullptr;
    core::lstm_backward(g, 1);
}

template <typename T>
void rnn(const int64_t* h) {
    namespace core = fastrnn::core;
    const Dims d{h[3], h[4], h[5], h[6]};
    const int64_t TB = d.T * d.B, BH = d.B * d.H;
    const bool given = h[9] != 0;
    const auto act = h[8] ? fastrnn::Nonlinearity::kRelu : fastrnn::Nonlinearity::kTanh;
    Arrays<T> a;
    const T* x = a.take(TB * d.I);
    const T* h0 = a.take(BH);
    const T* w_ih = a.take(d.H * d.I);
    const T* w_hh = a.take(d.H * d.H);
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
    g.d = d;
    g.act = act;
    g.x = f.x;
    g.h0 = f.h0;
    g.ld_h0 = d.H;
    g.w_ih = w_ih;
    g.w_hh = w_hh;
    g.h_seq = seq<const T>(h_seq, d, d.H);
    g.dh_seq = seq(dh_seq, d, d.H);
    g.dh_n = dh_n;
    g.ld_dh_n = d.H;
    g.dx = seq(dx, d, d.I);
    g.dh0 = dh0;
    g.dw_ih = dw_ih;
    g.dw_hh = dw_hh;
    g.db = db;
    core::rnn_backward(g, 1);
}

template <typename T>
void run(const int64_t* h) {
    if (h[0] == 0) lstm<T>(h);
    else rnn<T>(h);
}

}  // namespace

int main() {
    int64_t* h = reinterpret_cast<int64_t*>(fr_io);
    try {
        fastrnn::select_isa(h[1] == 3 ? "neon" : "generic");
        if (h[2] == 4) run<float>(h);
        else run<double>(h);
        h[10] = 1;
    } catch (const std::exception&) {
        h[10] = 2;
    }
    return 0;
}
