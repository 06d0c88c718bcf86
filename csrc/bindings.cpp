// The only file that includes pybind11: module fastrnn._core. Checks every argument once
// (dtype -> TypeError, shape/stride -> ValueError naming the argument), allocates the
// outputs as NumPy arrays, and runs the core with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fastrnn/dispatch.h"
#include "fastrnn/fpmode.h"
#include "fastrnn/gemm.h"
#include "fastrnn/lstm.h"
#include "fastrnn/parallel.h"
#include "fastrnn/peak.h"
#include "fastrnn/round_trip.h"
#include "fastrnn/rnn.h"
#include "fastrnn/workspace.h"
#include "core/sequence.h"

namespace py = pybind11;

namespace fastrnn::bindings {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
    std::ostringstream o;
    o << "(";
    for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
    o << (s.size() == 1 ? ",)" : ")");
    return o.str();
}

std::vector<int64_t> shape_of(const py::array& a) {
    return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

// Argument checks of one call; every message starts with the function's name.
class Checker {
public:
    explicit Checker(const char* fn) : fn_(fn) {}

    [[noreturn]] void type_error(const std::string& msg) const {
        throw py::type_error(std::string(fn_) + ": " + msg);
    }
    [[noreturn]] void value_error(const std::string& msg) const {
        throw py::value_error(std::string(fn_) + ": " + msg);
    }

    // x fixes the dtype of the call: float32 or float64, native byte order.
    py::array first(const py::handle& obj, const char* name) {
        py::array a = ndarray(obj, name);
        if (a.dtype().equal(py::dtype::of<float>()) || a.dtype().equal(py::dtype::of<double>())) {
            dtype_ = a.dtype();
        } else {
            type_error(std::string("`") + name + "` must have dtype float32 or float64, got " +
                       dtype_name(a) + "; convert it first, e.g. " + name + ".astype(np.float32)");
        }
        first_name_ = name;
        check_data(a, name);
        return a;
    }

    py::array array(const py::handle& obj, const char* name) {
        py::array a = ndarray(obj, name);
        if (!a.dtype().equal(dtype_))
            type_error(std::string("`") + name + "` has dtype " + dtype_name(a) + " but `" +
                       first_name_ + "` has " + py::str(dtype_).cast<std::string>() +
                       "; all arrays must share one dtype (float32 or float64)");
        check_data(a, name);
        return a;
    }

    std::optional<py::array> optional(const py::handle& obj, const char* name) {
        if (obj.is_none()) return std::nullopt;
        return array(obj, name);
    }

    void shape(const py::array& a, const char* name, const std::vector<int64_t>& want,
               const char* symbolic) const {
        if (shape_of(a) != want)
            value_error(std::string("`") + name + "` must have shape " + symbolic + " = " +
                        shape_str(want) + ", got " + shape_str(shape_of(a)));
    }

    void c_contiguous(const py::array& a, const char* name) const {
        if (!(a.flags() & py::array::c_style))
            value_error(std::string("`") + name +
                        "` must be C-contiguous; pass np.ascontiguousarray(" + name + ")");
    }

    // Rows may lie at any stride, but each row (the last axis) must be contiguous.
    void unit_last_stride(const py::array& a, const char* name) const {
        const ssize_t n = a.ndim();
        if (a.shape(n - 1) > 1 && a.strides(n - 1) != a.itemsize())
            value_error(std::string("`") + name +
                        "` must be contiguous along its last axis; pass np.ascontiguousarray(" +
                        name + ")");
    }

    // Stride of axis k in elements.
    static ptrdiff_t stride(const py::array& a, int k) { return a.strides(k) / a.itemsize(); }

private:
    py::array ndarray(const py::handle& obj, const char* name) const {
        if (!py::isinstance<py::array>(obj))
            type_error(std::string("`") + name + "` must be a numpy.ndarray, got " +
                       py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
        return py::reinterpret_borrow<py::array>(obj);
    }

    static std::string dtype_name(const py::array& a) {
        return py::str(a.dtype()).cast<std::string>();
    }

    // Element-aligned data and strides, so the core can index in elements.
    void check_data(const py::array& a, const char* name) const {
        const auto isz = a.itemsize();
        bool ok = reinterpret_cast<uintptr_t>(a.data()) % isz == 0;
        for (ssize_t k = 0; k < a.ndim(); ++k) ok = ok && a.strides(k) % isz == 0;
        if (!ok)
            value_error(std::string("`") + name +
                        "` is not aligned to its element size; pass np.ascontiguousarray(" + name +
                        ")");
    }

    const char* fn_;
    py::dtype dtype_;
    const char* first_name_ = "x";
};

// Sizes and strides of a sequence array in either layout.
struct Seq {
    int64_t T, B, K;
    ptrdiff_t st, sb, sk;
};

Seq read_seq(const Checker& ck, const py::array& a, const char* name, bool batch_first) {
    if (a.ndim() != 3)
        ck.value_error(std::string("`") + name + "` must be 3-D " +
                       (batch_first ? "(B, T, features)" : "(T, B, features)") + ", got shape " +
                       shape_str(shape_of(a)));
    const int tb = batch_first ? 1 : 0, bb = batch_first ? 0 : 1;
    return {a.shape(tb), a.shape(bb), a.shape(2), Checker::stride(a, tb), Checker::stride(a, bb),
            Checker::stride(a, 2)};
}

template <typename T>
SeqView<T> seq_view(T* p, const Seq& s) {
    return SeqView<T>{p, s.st, s.sb, s.sk};
}

// Outputs this large come from the core's output pool (workspace.h). Its free list is
// scanned on every request, and this floor keeps it to at most 1024 blocks (256 MiB /
// 256 KiB). glibc serves smaller arrays from its heap without page faults.
constexpr int64_t kPooledOutputBytes = int64_t(256) << 10;

// A block of the output pool, handed back when the NumPy array that views it dies.
struct PooledBlock {
    void* p;
    int64_t capacity;
};

// A fresh C-contiguous output of the given shape, uninitialised like np.empty.
template <typename T>
py::array_t<T> empty(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t s : shape) n = checked_mul(n, s);
    const std::vector<ssize_t> dims(shape.begin(), shape.end());
    const int64_t bytes = checked_mul(n, static_cast<int64_t>(sizeof(T)));
    if (bytes < kPooledOutputBytes) return py::array_t<T>(dims);
    auto block = std::make_unique<PooledBlock>();
    block->p = output_acquire(bytes, &block->capacity);
    T* data = static_cast<T*>(block->p);
    py::capsule owner;
    try {
        owner = py::capsule(block.get(), [](void* v) {
            std::unique_ptr<PooledBlock> b(static_cast<PooledBlock*>(v));
            output_release(b->p, b->capacity);
        });
    } catch (...) {
        output_release(block->p, block->capacity);
        throw;
    }
    block.release();  // the capsule owns it now
    return py::array_t<T>(dims, data, owner);
}

// A sequence output (T, B, K) in the caller's layout, C-contiguous.
template <typename T>
py::array_t<T> empty_seq(int64_t T_, int64_t B, int64_t K, bool batch_first, SeqView<T>* view) {
    py::array_t<T> a = batch_first ? empty<T>({B, T_, K}) : empty<T>({T_, B, K});
    Seq s = read_seq(Checker(""), a, "", batch_first);
    *view = seq_view<T>(a.mutable_data(), s);
    return a;
}

// Dimensions of a call, read from x and w_hh, checked against each other.
struct Shapes {
    Dims d;
    Seq x;
    int64_t GH;
};

Shapes read_shapes(const Checker& ck, const py::array& x, const py::array& w_ih,
                   const py::array& w_hh, const py::array& b, int G, bool batch_first) {
    Shapes s;
    s.x = read_seq(ck, x, "x", batch_first);
    if (w_hh.ndim() != 2 || w_hh.shape(0) != G * w_hh.shape(1))
        ck.value_error(std::string("`w_hh` must have shape (") + (G > 1 ? "4*H" : "H") +
                       ", H), got " + shape_str(shape_of(w_hh)));
    s.d = Dims{s.x.T, s.x.B, s.x.K, w_hh.shape(1)};
    s.GH = G * s.d.H;
    if (s.d.T == 0 || s.d.B == 0 || s.d.I == 0 || s.d.H == 0)
        ck.value_error("all sizes must be at least 1, got T=" + std::to_string(s.d.T) +
                       ", B=" + std::to_string(s.d.B) + ", I=" + std::to_string(s.d.I) +
                       ", H=" + std::to_string(s.d.H));
    ck.shape(w_ih, "w_ih", {s.GH, s.d.I}, G > 1 ? "(4*H, I)" : "(H, I)");
    ck.shape(b, "b", {s.GH}, G > 1 ? "(4*H,)" : "(H,)");
    for (auto [a, name] : {std::pair{&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {&b, "b"}})
        ck.c_contiguous(*a, name);
    return s;
}

// An optional (B, H) state: pointer and row stride, or nullptr.
template <typename T>
const T* state(const Checker& ck, const std::optional<py::array>& a, const char* name,
               const Dims& d, ptrdiff_t* ld) {
    *ld = d.H;
    if (!a) return nullptr;
    ck.shape(*a, name, {d.B, d.H}, "(B, H)");
    ck.unit_last_stride(*a, name);
    *ld = Checker::stride(*a, 0);
    return static_cast<const T*>(a->data());
}

template <typename T>
SeqView<const T> dseq(const Checker& ck, const std::optional<py::array>& a, const char* name,
                      const Dims& d, bool batch_first) {
    if (!a) return SeqView<const T>{};
    const std::vector<int64_t> want = batch_first ? std::vector<int64_t>{d.B, d.T, d.H}
                                                  : std::vector<int64_t>{d.T, d.B, d.H};
    ck.shape(*a, name, want, batch_first ? "(B, T, H)" : "(T, B, H)");
    ck.unit_last_stride(*a, name);
    Seq s = read_seq(ck, *a, name, batch_first);
    return SeqView<const T>{static_cast<const T*>(a->data()), s.st, s.sb, 1};
}


bool is_float32(const py::handle& x) {
    // Dtype dispatch only; Checker::first() reports a wrong dtype or a non-array.
    return py::isinstance<py::array>(x) &&
           py::reinterpret_borrow<py::array>(x).dtype().equal(py::dtype::of<float>());
}

// ---- LSTM ------------------------------------------------------------------------------

template <typename T>
py::tuple lstm_forward_impl(const py::handle& x_, const py::handle& h0_, const py::handle& c0_,
                            const py::handle& w_ih_, const py::handle& w_hh_,
                            const py::handle& b_, const py::handle& peephole_, bool batch_first,
                            bool training) {
    Checker ck("lstm_forward");
    py::array x = ck.first(x_, "x");
    py::array w_ih = ck.array(w_ih_, "w_ih"), w_hh = ck.array(w_hh_, "w_hh"), b = ck.array(b_, "b");
    auto h0 = ck.optional(h0_, "h0"), c0 = ck.optional(c0_, "c0");
    auto peephole = ck.optional(peephole_, "peephole");
    Shapes s = read_shapes(ck, x, w_ih, w_hh, b, kLstmGates, batch_first);
    const Dims& d = s.d;

    core::LstmForwardArgs<T> a;
    a.d = d;
    a.x = seq_view<const T>(static_cast<const T*>(x.data()), s.x);
    a.h0 = state<T>(ck, h0, "h0", d, &a.ld_h0);
    a.c0 = state<T>(ck, c0, "c0", d, &a.ld_c0);
    a.w = {static_cast<const T*>(w_ih.data()), static_cast<const T*>(w_hh.data()),
           static_cast<const T*>(b.data()), nullptr};
    if (peephole) {
        ck.shape(*peephole, "peephole", {3, d.H}, "(3, H)");
        ck.c_contiguous(*peephole, "peephole");
        a.w.peephole = static_cast<const T*>(peephole->data());
    }
    py::array_t<T> h_seq = empty_seq<T>(d.T, d.B, d.H, batch_first, &a.h_seq);
    py::array_t<T> h_n = empty<T>({d.B, d.H}), c_n = empty<T>({d.B, d.H});
    a.h_n = h_n.mutable_data();
    a.c_n = c_n.mutable_data();
    py::object gates = py::none(), c_seq = py::none();
    if (training) {
        py::array_t<T> g = empty<T>({d.T, d.B, kLstmGates * d.H}), c = empty<T>({d.T, d.B, d.H});
        a.gates = g.mutable_data();
        a.c_seq = c.mutable_data();
        gates = g;
        c_seq = c;
    }
    const int threads = max_threads();
    {
        py::gil_scoped_release nogil;
        core::lstm_forward<T>(a, threads);
    }
    return py::make_tuple(h_seq, h_n, c_n, gates, c_seq);
}

template <typename T>
py::tuple lstm_backward_impl(const py::handle& dh_seq_, const py::handle& dh_n_,
                             const py::handle& dc_n_, const py::handle& x_, const py::handle& h0_,
                             const py::handle& c0_, const py::handle& w_ih_,
                             const py::handle& w_hh_, const py::handle& b_,
                             const py::handle& peephole_, const py::handle& h_seq_,
                             const py::handle& gates_, const py::handle& c_seq_,
                             bool batch_first) {
    Checker ck("lstm_backward");
    py::array x = ck.first(x_, "x");
    py::array w_ih = ck.array(w_ih_, "w_ih"), w_hh = ck.array(w_hh_, "w_hh"), b = ck.array(b_, "b");
    auto h0 = ck.optional(h0_, "h0"), c0 = ck.optional(c0_, "c0");
    auto peephole = ck.optional(peephole_, "peephole");
    py::array h_seq = ck.array(h_seq_, "h_seq"), gates = ck.array(gates_, "cache.gates");
    py::array c_seq = ck.array(c_seq_, "cache.c_seq");
    auto dh_seq = ck.optional(dh_seq_, "dh_seq"), dh_n = ck.optional(dh_n_, "dh_n");
    auto dc_n = ck.optional(dc_n_, "dc_n");
    Shapes s = read_shapes(ck, x, w_ih, w_hh, b, kLstmGates, batch_first);
    const Dims& d = s.d;

    core::LstmBackwardArgs<T> a;
    a.d = d;
    a.x = seq_view<const T>(static_cast<const T*>(x.data()), s.x);
    a.h0 = state<T>(ck, h0, "h0", d, &a.ld_h0);
    a.c0 = state<T>(ck, c0, "c0", d, &a.ld_c0);
    a.w = {static_cast<const T*>(w_ih.data()), static_cast<const T*>(w_hh.data()),
           static_cast<const T*>(b.data()), nullptr};
    py::object dpeephole = py::none();
    if (peephole) {
        ck.shape(*peephole, "peephole", {3, d.H}, "(3, H)");
        ck.c_contiguous(*peephole, "peephole");
        a.w.peephole = static_cast<const T*>(peephole->data());
        py::array_t<T> dp = empty<T>({3, d.H});
        a.dpeephole = dp.mutable_data();
        dpeephole = dp;
    }
    a.h_seq = dseq<T>(ck, h_seq, "h_seq", d, batch_first);
    ck.shape(gates, "cache.gates", {d.T, d.B, kLstmGates * d.H}, "(T, B, 4*H)");
    ck.shape(c_seq, "cache.c_seq", {d.T, d.B, d.H}, "(T, B, H)");
    ck.c_contiguous(gates, "cache.gates");
    ck.c_contiguous(c_seq, "cache.c_seq");
    a.gates = static_cast<const T*>(gates.data());
    a.c_seq = static_cast<const T*>(c_seq.data());
    a.dh_seq = dseq<T>(ck, dh_seq, "dh_seq", d, batch_first);
    a.dh_n = state<T>(ck, dh_n, "dh_n", d, &a.ld_dh_n);
    a.dc_n = state<T>(ck, dc_n, "dc_n", d, &a.ld_dc_n);

    py::array_t<T> dx = empty_seq<T>(d.T, d.B, d.I, batch_first, &a.dx);
    py::array_t<T> dh0 = empty<T>({d.B, d.H}), dc0 = empty<T>({d.B, d.H});
    py::array_t<T> dw_ih = empty<T>({s.GH, d.I}), dw_hh = empty<T>({s.GH, d.H});
    py::array_t<T> db = empty<T>({s.GH});
    a.dh0 = dh0.mutable_data();
    a.dc0 = dc0.mutable_data();
    a.dw_ih = dw_ih.mutable_data();
    a.dw_hh = dw_hh.mutable_data();
    a.db = db.mutable_data();
    const int threads = max_threads();
    {
        py::gil_scoped_release nogil;
        core::lstm_backward<T>(a, threads);
    }
    return py::make_tuple(dx, dh0, dc0, dw_ih, dw_hh, db, dpeephole);
}

// ---- Elman RNN -------------------------------------------------------------------------

Nonlinearity parse_nonlinearity(const Checker& ck, const std::string& s) {
    if (s == "tanh") return Nonlinearity::kTanh;
    if (s == "relu") return Nonlinearity::kRelu;
    ck.value_error("`nonlinearity` must be 'tanh' or 'relu', got '" + s + "'");
}

template <typename T>
py::tuple rnn_forward_impl(const py::handle& x_, const py::handle& h0_, const py::handle& w_ih_,
                           const py::handle& w_hh_, const py::handle& b_,
                           const std::string& nonlinearity, bool batch_first) {
    Checker ck("rnn_forward");
    py::array x = ck.first(x_, "x");
    py::array w_ih = ck.array(w_ih_, "w_ih"), w_hh = ck.array(w_hh_, "w_hh"), b = ck.array(b_, "b");
    auto h0 = ck.optional(h0_, "h0");
    Shapes s = read_shapes(ck, x, w_ih, w_hh, b, kRnnGates, batch_first);
    const Dims& d = s.d;

    core::RnnForwardArgs<T> a;
    a.d = d;
    a.act = parse_nonlinearity(ck, nonlinearity);
    a.x = seq_view<const T>(static_cast<const T*>(x.data()), s.x);
    a.h0 = state<T>(ck, h0, "h0", d, &a.ld_h0);
    a.w_ih = static_cast<const T*>(w_ih.data());
    a.w_hh = static_cast<const T*>(w_hh.data());
    a.b = static_cast<const T*>(b.data());
    py::array_t<T> h_seq = empty_seq<T>(d.T, d.B, d.H, batch_first, &a.h_seq);
    py::array_t<T> h_n = empty<T>({d.B, d.H});
    a.h_n = h_n.mutable_data();
    const int threads = max_threads();
    {
        py::gil_scoped_release nogil;
        core::rnn_forward<T>(a, threads);
    }
    return py::make_tuple(h_seq, h_n);
}

template <typename T>
py::tuple rnn_backward_impl(const py::handle& dh_seq_, const py::handle& dh_n_,
                            const py::handle& x_, const py::handle& h0_, const py::handle& w_ih_,
                            const py::handle& w_hh_, const py::handle& b_,
                            const py::handle& h_seq_, const std::string& nonlinearity,
                            bool batch_first) {
    Checker ck("rnn_backward");
    py::array x = ck.first(x_, "x");
    py::array w_ih = ck.array(w_ih_, "w_ih"), w_hh = ck.array(w_hh_, "w_hh"), b = ck.array(b_, "b");
    auto h0 = ck.optional(h0_, "h0");
    py::array h_seq = ck.array(h_seq_, "h_seq");
    auto dh_seq = ck.optional(dh_seq_, "dh_seq"), dh_n = ck.optional(dh_n_, "dh_n");
    Shapes s = read_shapes(ck, x, w_ih, w_hh, b, kRnnGates, batch_first);
    const Dims& d = s.d;

    core::RnnBackwardArgs<T> a;
    a.d = d;
    a.act = parse_nonlinearity(ck, nonlinearity);
    a.x = seq_view<const T>(static_cast<const T*>(x.data()), s.x);
    a.h0 = state<T>(ck, h0, "h0", d, &a.ld_h0);
    a.w_ih = static_cast<const T*>(w_ih.data());
    a.w_hh = static_cast<const T*>(w_hh.data());
    a.h_seq = dseq<T>(ck, h_seq, "h_seq", d, batch_first);
    a.dh_seq = dseq<T>(ck, dh_seq, "dh_seq", d, batch_first);
    a.dh_n = state<T>(ck, dh_n, "dh_n", d, &a.ld_dh_n);

    py::array_t<T> dx = empty_seq<T>(d.T, d.B, d.I, batch_first, &a.dx);
    py::array_t<T> dh0 = empty<T>({d.B, d.H});
    py::array_t<T> dw_ih = empty<T>({d.H, d.I}), dw_hh = empty<T>({d.H, d.H});
    py::array_t<T> db = empty<T>({d.H});
    a.dh0 = dh0.mutable_data();
    a.dw_ih = dw_ih.mutable_data();
    a.dw_hh = dw_hh.mutable_data();
    a.db = db.mutable_data();
    const int threads = max_threads();
    {
        py::gil_scoped_release nogil;
        core::rnn_backward<T>(a, threads);
    }
    return py::make_tuple(dx, dh0, dw_ih, dw_hh, db);
}

// ---- GEMM (for tests and the bench: the driver every sequence-wide product uses) -------

// a (M, K) and b (K, N), checked by ck, as the arguments of C = a @ b into a new array c.
template <typename T>
GemmArgs<T> matmul_args(Checker& ck, const py::array& a, const py::array& b, const char* names,
                        py::array_t<T>& c) {
    if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(0))
        ck.value_error(std::string("need ") + names + " of shapes (M, K) and (K, N), got " +
                       shape_str(shape_of(a)) + " and " + shape_str(shape_of(b)));
    const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
    c = empty<T>({M, N});
    ConstMat<T> A{static_cast<const T*>(a.data()), Axis::plain(Checker::stride(a, 0)),
                  Axis::plain(Checker::stride(a, 1))};
    ConstMat<T> B{static_cast<const T*>(b.data()), Axis::plain(Checker::stride(b, 0)),
                  Axis::plain(Checker::stride(b, 1))};
    return GemmArgs<T>{M, N, K, A, B, T(0), c.mutable_data(), Axis::plain(N)};
}

template <typename T>
py::array matmul_impl(const py::handle& a_, const py::handle& b_) {
    Checker ck("matmul");
    py::array a = ck.first(a_, "a");
    py::array b = ck.array(b_, "b");
    py::array_t<T> c;
    const GemmArgs<T> g = matmul_args(ck, a, b, "a and b", c);
    const int threads = max_threads();
    {
        py::gil_scoped_release nogil;
        FlushDenormals ftz;
        gemm<T>(g, threads);
    }
    return c;
}

template <typename T>
py::tuple matmul_pair_impl(const py::handle& a0_, const py::handle& b0_, const py::handle& a1_,
                           const py::handle& b1_) {
    Checker ck("matmul_pair");
    py::array a0 = ck.first(a0_, "a0");
    py::array b0 = ck.array(b0_, "b0");
    py::array a1 = ck.array(a1_, "a1");
    py::array b1 = ck.array(b1_, "b1");
    py::array_t<T> c0, c1;
    const GemmArgs<T> g0 = matmul_args(ck, a0, b0, "a0 and b0", c0);
    const GemmArgs<T> g1 = matmul_args(ck, a1, b1, "a1 and b1", c1);
    const int threads = max_threads();
    {
        py::gil_scoped_release nogil;
        FlushDenormals ftz;
        gemm_pair<T>(g0, g1, threads);
    }
    return py::make_tuple(c0, c1);
}

}  // namespace
}  // namespace fastrnn::bindings

PYBIND11_MODULE(_core, m) {
    using namespace fastrnn;
    using namespace fastrnn::bindings;
    namespace py = pybind11;
    m.doc() = "fastrnn C++ core (unchecked low-level API; use fastrnn.functional)";

    m.def(
        "lstm_forward",
        [](py::handle x, py::handle h0, py::handle c0, py::handle w_ih, py::handle w_hh,
           py::handle b, py::handle peephole, bool batch_first, bool training) {
            return is_float32(x) ? lstm_forward_impl<float>(x, h0, c0, w_ih, w_hh, b, peephole,
                                                            batch_first, training)
                                 : lstm_forward_impl<double>(x, h0, c0, w_ih, w_hh, b, peephole,
                                                             batch_first, training);
        },
        py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b"), py::arg("peephole"), py::arg("batch_first"), py::arg("training"),
        "-> (h_seq, h_n, c_n, gates | None, c_seq | None)");
    m.def(
        "lstm_backward",
        [](py::handle dh_seq, py::handle dh_n, py::handle dc_n, py::handle x, py::handle h0,
           py::handle c0, py::handle w_ih, py::handle w_hh, py::handle b, py::handle peephole,
           py::handle h_seq, py::handle gates, py::handle c_seq, bool batch_first) {
            return is_float32(x)
                       ? lstm_backward_impl<float>(dh_seq, dh_n, dc_n, x, h0, c0, w_ih, w_hh, b,
                                                   peephole, h_seq, gates, c_seq, batch_first)
                       : lstm_backward_impl<double>(dh_seq, dh_n, dc_n, x, h0, c0, w_ih, w_hh, b,
                                                    peephole, h_seq, gates, c_seq, batch_first);
        },
        py::arg("dh_seq"), py::arg("dh_n"), py::arg("dc_n"), py::arg("x"), py::arg("h0"),
        py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b"), py::arg("peephole"),
        py::arg("h_seq"), py::arg("gates"), py::arg("c_seq"), py::arg("batch_first"),
        "-> (dx, dh0, dc0, dw_ih, dw_hh, db, dpeephole | None)");
    m.def(
        "rnn_forward",
        [](py::handle x, py::handle h0, py::handle w_ih, py::handle w_hh, py::handle b,
           const std::string& nonlinearity, bool batch_first) {
            return is_float32(x)
                       ? rnn_forward_impl<float>(x, h0, w_ih, w_hh, b, nonlinearity, batch_first)
                       : rnn_forward_impl<double>(x, h0, w_ih, w_hh, b, nonlinearity, batch_first);
        },
        py::arg("x"), py::arg("h0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b"),
        py::arg("nonlinearity"), py::arg("batch_first"), "-> (h_seq, h_n)");
    m.def(
        "rnn_backward",
        [](py::handle dh_seq, py::handle dh_n, py::handle x, py::handle h0, py::handle w_ih,
           py::handle w_hh, py::handle b, py::handle h_seq, const std::string& nonlinearity,
           bool batch_first) {
            return is_float32(x) ? rnn_backward_impl<float>(dh_seq, dh_n, x, h0, w_ih, w_hh, b,
                                                            h_seq, nonlinearity, batch_first)
                                 : rnn_backward_impl<double>(dh_seq, dh_n, x, h0, w_ih, w_hh, b,
                                                             h_seq, nonlinearity, batch_first);
        },
        py::arg("dh_seq"), py::arg("dh_n"), py::arg("x"), py::arg("h0"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b"), py::arg("h_seq"), py::arg("nonlinearity"),
        py::arg("batch_first"), "-> (dx, dh0, dw_ih, dw_hh, db)");

    m.def(
        "matmul",
        [](py::handle a, py::handle b) {
            return is_float32(a) ? matmul_impl<float>(a, b) : matmul_impl<double>(a, b);
        },
        py::arg("a"), py::arg("b"), "a @ b through fastrnn's GEMM driver (any strides).");
    m.def(
        "matmul_pair",
        [](py::handle a0, py::handle b0, py::handle a1, py::handle b1) {
            return is_float32(a0) ? matmul_pair_impl<float>(a0, b0, a1, b1)
                                  : matmul_pair_impl<double>(a0, b0, a1, b1);
        },
        py::arg("a0"), py::arg("b0"), py::arg("a1"), py::arg("b1"),
        "(a0 @ b0, a1 @ b1) through gemm_pair, which on 2 threads may run them side by side.");
    m.def("active_isa", [] { return std::string(isa_name(active_isa())); });
    m.def("supported_isas", [] {
        std::vector<std::string> out;
        for (Isa isa : supported_isas()) out.emplace_back(isa_name(isa));
        return out;
    });
    m.def("select_isa", &select_isa, py::arg("name"),
          "Switch the kernel table (tests and benchmarks); the CPU must support it.");
    m.def(
        "fma_peak_gflops",
        [](int threads, double seconds) {
            if (threads < 1 || threads > 1024)
                throw py::value_error("`threads` must be in [1, 1024], got " +
                                      std::to_string(threads));
            if (!(seconds > 0 && seconds <= 10))
                throw py::value_error("`seconds` must be in (0, 10], got " +
                                      std::to_string(seconds));
            py::gil_scoped_release nogil;
            return fma_peak_gflops(threads, seconds);
        },
        py::arg("threads"), py::arg("seconds") = 0.2,
        "Measured float32 FMA GFLOP/s of the active ISA on `threads` threads.");
    m.def(
        "round_trip_ns",
        [](int trips, int rounds) {
            // Bounded: the GIL is released and the loop cannot be interrupted, and a round
            // trip on a contended core takes ~17 us (the maximum then takes ~3 minutes).
            if (trips < 1 || trips > 100'000)
                throw py::value_error("`trips` must be in [1, 100000], got " +
                                      std::to_string(trips));
            if (rounds < 1 || rounds > 100)
                throw py::value_error("`rounds` must be in [1, 100], got " +
                                      std::to_string(rounds));
            double ns;
            {
                py::gil_scoped_release nogil;
                ns = round_trip_ns(trips, rounds);
            }
            return ns < 0 ? py::object(py::none()) : py::object(py::float_(ns));
        },
        py::arg("trips") = 2000, py::arg("rounds") = 5,
        "Median ns of a cache-line round trip between two of the library's threads (None "
        "without OpenMP, in a forked child, or when no second thread can start).");
    m.def(
        "_grad_chunk_steps",
        [](int64_t T, int64_t B, int64_t GH, bool float64) {
            for (const auto& [name, v] : {std::pair<const char*, int64_t>{"T", T}, {"B", B},
                                          {"GH", GH}})
                if (v < 1)
                    throw py::value_error(std::string("`") + name + "` must be >= 1, got " +
                                          std::to_string(v));
            const Dims d{T, B, 0, 0};
            return float64 ? core::SequenceGrads<double>::chunk_steps(d, GH)
                           : core::SequenceGrads<float>::chunk_steps(d, GH);
        },
        py::arg("T"), py::arg("B"), py::arg("GH"), py::arg("float64"),
        "Steps per chunk of the backward's gradient GEMMs (tests: shapes with several).");
    m.def("set_num_threads", &set_max_threads, py::arg("n"));
    m.def("get_num_threads", &max_threads);
    m.attr("openmp") = have_openmp();
#ifdef __VERSION__
    m.attr("compiler") = std::string(
#if defined(__clang__)
        "clang "
#elif defined(__GNUC__)
        "gcc "
#endif
        __VERSION__);
#else
    m.attr("compiler") = "unknown";
#endif
    m.attr("build_type") = FASTRNN_BUILD_TYPE;
}
