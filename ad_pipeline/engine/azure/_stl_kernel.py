"""Compiled STL (numba): a port of the netlib STL algorithm as statsmodels' ``_stl.pyx`` runs it.

The functions mirror the FORTRAN routines (``stlest`` = :func:`_fit`, ``stless`` =
:func:`_ess_plan` + :func:`_ess_run`, ``stlfts`` = three :func:`_ma`, ``stlss`` = :func:`_ss`,
``stlstp`` / ``stl`` / ``stlrwt`` = :func:`stl_run`) and keep their index conventions (1-based
``xs``, ``nleft``, ``nright``). Every floating-point operation is the original's, in the
original's order, so the results equal statsmodels' to the last bit (``tests/engine/test_stl.py``
checks it), also in the ill-conditioned robust fits of periods 2 and 3 where any reordering of a
sum grows into visible differences over the 15 robustness iterations.

The speed comes from doing less work around those operations, not from changing them:

- what depends on sizes only is computed once per (length, period) and shared by every series
  with the same shape (:func:`stl_setup`): the tricube weights of every window, the fit points of
  each smoother, and the final coefficients of the smoothers without robustness weights (the
  low-pass filter, and the first trend pass), which then cost one dot product per fit;
- the robust trend fits of the interior windows run in blocks (:func:`_fit_block`), so the
  independent sums of neighbouring windows overlap in the CPU instead of waiting on one another;
- a periodic seasonal window (as Azure's) smooths each cycle-subseries from its two end fits.

:func:`stl_batch_kernel` decomposes many series (flat values + offsets) in parallel, with the
window settings of Azure's decomposition derived per series (see :mod:`ad_pipeline.engine.azure.stl`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_jit = njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _weights(xs, nleft, nright, h, w):  # type: ignore[no-untyped-def]
    """Tricube weights of ``stlest`` for positions ``nleft..nright`` (1-based) into ``w[0:]``."""
    h9 = 0.999 * h
    h1 = 0.001 * h
    for j in range(nleft - 1, nright):
        r = abs(float(j + 1 - xs))
        wj = 0.0
        if r <= h9:
            if r <= h1:
                wj = 1.0
            else:
                wj = (1.0 - (r / h) ** 3.0) ** 3.0
        w[j - nleft + 1] = wj


@_jit
def _fit(y, n, ideg, xs, nleft, nright, h, userw, rw, wtab, w):  # type: ignore[no-untyped-def]
    """``stlest`` given the tricube weights ``wtab`` of positions ``nleft..nright``; NaN if no weight.

    Same operations in the same order as the original (``w`` is scratch), so the numbers agree
    to the last bit with statsmodels' compiled version.
    """
    lo = nleft - 1
    m = nright - lo
    a = 0.0
    if userw:
        for t in range(m):
            wt = wtab[t] * rw[lo + t]
            w[t] = wt
            a += wt
    else:
        for t in range(m):
            wt = wtab[t]
            w[t] = wt
            a += wt
    if a <= 0.0:
        return np.nan
    for t in range(m):
        w[t] = w[t] / a
    if h > 0.0 and ideg > 0:
        a = 0.0
        for t in range(m):
            a += w[t] * (lo + t + 1)
        b = xs - a
        c = 0.0
        for t in range(m):
            d = lo + t + 1 - a
            c += w[t] * (d * d)
        if math.sqrt(c) > 0.001 * (n - 1.0):
            b = b / c
            ys = 0.0
            for t in range(m):
                ys += w[t] * (b * (lo + t + 1 - a) + 1.0) * y[lo + t]
            return ys
    ys = 0.0
    for t in range(m):
        ys += w[t] * y[lo + t]
    return ys


@_jit
def _est(y, n, len_, ideg, xs, nleft, nright, userw, rw, tab, htab, hctab, scratch):  # type: ignore[no-untyped-def]
    """``stlest``: local fit at ``xs`` from ``y[nleft-1:nright]``, NaN when no point has weight.

    ``tab`` holds the weights of windows with bandwidth ``htab`` whose left end lies ``hctab``
    points before ``xs``; other windows get their weights computed into ``scratch``.
    """
    h = float(max(xs - nleft, nright - xs))
    if len_ > n:
        h += float((len_ - n) // 2)
    if h == htab and xs - nleft == hctab:
        return _fit(y, n, ideg, xs, nleft, nright, h, userw, rw, tab, scratch)
    _weights(xs, nleft, nright, h, scratch)
    return _fit(y, n, ideg, xs, nleft, nright, h, userw, rw, scratch, scratch)


_COEF_LIMIT = 4_000_000  # coefficients kept per smoother (32 MB); beyond, weights are recomputed
_BLOCK = 64  # interior windows fitted together (independent sums overlap in the CPU)


@_jit
def _fit_block(y, n, ideg, bx, blo, nb, m, h, userw, rw, wtab, w, acc, shared=True):  # type: ignore[no-untyped-def]
    """:func:`_fit` for ``nb`` windows of ``m`` points sharing the weights ``wtab`` (``acc[4]`` = fits).

    Window ``q`` starts at 0-based ``blo[q]`` and is fitted at ``bx[q]``; with ``shared=False``
    its weights are ``w[:, q]`` on entry instead of ``wtab``. Each window's sums run
    in the original order, so every fit equals :func:`_fit`'s to the last bit; interleaving the
    windows only removes the wait on one long chain of additions.
    """
    a = acc[0]
    a1 = acc[1]
    c = acc[2]
    b = acc[3]
    ys = acc[4]
    for q in range(nb):
        a[q] = 0.0
    for t in range(m):
        wrow = w[t]
        if shared:
            wt = wtab[t]
            for q in range(nb):
                wrow[q] = wt
        if userw:
            for q in range(nb):
                v = wrow[q] * rw[blo[q] + t]
                wrow[q] = v
                a[q] += v
        else:
            for q in range(nb):
                a[q] += wrow[q]
    for q in range(nb):
        ys[q] = 0.0
        b[q] = 0.0
    if h > 0.0 and ideg > 0:
        for q in range(nb):
            a1[q] = 0.0
            c[q] = 0.0
        for t in range(m):  # normalise, and the weighted mean position
            wrow = w[t]
            for q in range(nb):
                wn = wrow[q] / a[q]
                wrow[q] = wn
                a1[q] += wn * (blo[q] + t + 1)
        for t in range(m):
            wrow = w[t]
            for q in range(nb):
                d = blo[q] + t + 1 - a1[q]
                c[q] += wrow[q] * (d * d)
        thr = 0.001 * (n - 1.0)
        for q in range(nb):
            # without slope the factor below is exactly 1.0 (b = 0), as the original's plain sum
            if math.sqrt(c[q]) > thr:
                b[q] = (bx[q] - a1[q]) / c[q]
        for t in range(m):
            wrow = w[t]
            for q in range(nb):
                ys[q] += wrow[q] * (b[q] * (blo[q] + t + 1 - a1[q]) + 1.0) * y[blo[q] + t]
    else:
        for t in range(m):
            wrow = w[t]
            for q in range(nb):
                wn = wrow[q] / a[q]
                ys[q] += wn * y[blo[q] + t]
    for q in range(nb):
        if a[q] <= 0.0:
            ys[q] = np.nan


@_jit
def _flush(y, n, ideg, nb, len_, htab, userw, rw, tab, ys, bx, blo, w, acc):  # type: ignore[no-untyped-def]
    _fit_block(y, n, ideg, bx, blo, nb, len_, htab, userw, rw, tab, w, acc)
    for q in range(nb):
        i = bx[q] - 1
        v = acc[4, q]
        ys[i] = y[i] if math.isnan(v) else v


@_jit
def _flush_own(y, n, ideg, nb, m, userw, rw, ys, bx, blo, w, acc):  # type: ignore[no-untyped-def]
    _fit_block(y, n, ideg, bx, blo, nb, m, 1.0, userw, rw, w[0], w, acc, False)
    for q in range(nb):
        i = bx[q] - 1
        v = acc[4, q]
        ys[i] = y[i] if math.isnan(v) else v


@_jit
def _interp_jumps(ys, n, newnj):  # type: ignore[no-untyped-def]
    """Fill ``ys`` linearly between the fits at 0, newnj, 2*newnj, ...; returns the index after the
    last of them (``k``: ``k != n`` means the last point still needs its own fit)."""
    i = 0
    while i < n - newnj:
        delta = (ys[i + newnj] - ys[i]) / newnj
        for j in range(i + 1, i + newnj):
            ys[j] = ys[i] + delta * (j - i)
        i += newnj
    return ((n - 1) // newnj) * newnj + 1


@_jit
def _interp_tail(ys, n, k):  # type: ignore[no-untyped-def]
    """Fill ``ys[k:n]`` linearly between the fits at ``k - 1`` and ``n - 1``."""
    if k != n - 1:
        delta = (ys[n - 1] - ys[k - 1]) / (n - k)
        for j in range(k, n):
            ys[j] = ys[k - 1] + delta * ((j + 1) - k)


@_jit
def _ess_plan(n, len_, njump, tab):  # type: ignore[no-untyped-def]
    """The fit points and windows ``stless`` uses for ``n`` points, with their tricube weights.

    They depend on the sizes only, so a decomposition plans each smoother once and runs the plan
    in every pass. Returns ``(cnt, ev, hs, wcache, htab, hctab)``: entry ``e < cnt`` fits 0-based
    point ``ev[0, e]`` from the 1-based window ``ev[1, e]..ev[2, e]`` with bandwidth ``hs[e]``;
    entry ``cnt`` is the final end correction (fit at ``n``). A symmetric interior window uses
    the shared table ``tab`` (``ev[3, e] = -1``; bandwidth ``htab``); any other one its own weights
    at ``wcache[ev[3, e]:]``.
    """
    newnj = min(njump, n - 1)
    htab = -1.0
    hctab = -1
    if len_ < n:
        hctab = (len_ + 1) // 2 - 1
        htab = float(max(hctab, len_ - 1 - hctab))
        _weights(hctab + 1, 1, len_, htab, tab)
    ev = np.empty((4, n + 1), dtype=np.int64)
    cnt = 0
    nleft = 1
    nright = n
    if len_ >= n:
        i = 0
        while i < n:
            ev[0, cnt] = i
            ev[1, cnt] = nleft
            ev[2, cnt] = nright
            cnt += 1
            i += newnj
    elif newnj == 1:
        nsh = (len_ + 2) // 2
        nleft = 1
        nright = len_
        for i in range(n):
            if (i + 1) > nsh and nright != n:
                nleft += 1
                nright += 1
            ev[0, cnt] = i
            ev[1, cnt] = nleft
            ev[2, cnt] = nright
            cnt += 1
    else:
        nsh = (len_ + 1) // 2
        i = 0
        while i < n:
            if (i + 1) < nsh:
                nleft = 1
                nright = len_
            elif (i + 1) >= (n - nsh + 1):
                nleft = n - len_ + 1
                nright = n
            else:
                nleft = i + 1 - nsh + 1
                nright = len_ + i + 1 - nsh
            ev[0, cnt] = i
            ev[1, cnt] = nleft
            ev[2, cnt] = nright
            cnt += 1
            i += newnj
    ev[0, cnt] = n - 1
    ev[1, cnt] = nleft
    ev[2, cnt] = nright
    hs = np.empty(cnt + 1)
    size = 0
    for e in range(cnt + 1):
        xs = ev[0, e] + 1
        nl_ = ev[1, e]
        nr_ = ev[2, e]
        h = float(max(xs - nl_, nr_ - xs))
        if len_ > n:
            h += float((len_ - n) // 2)
        hs[e] = h
        if h == htab and xs - nl_ == hctab and nr_ - nl_ + 1 == len_:
            ev[3, e] = -1
        else:
            ev[3, e] = size
            size += nr_ - nl_ + 1
    wcache = np.empty(max(size, 1))
    for e in range(cnt + 1):
        if ev[3, e] >= 0:
            _weights(ev[0, e] + 1, ev[1, e], ev[2, e], hs[e], wcache[ev[3, e]:])
    return cnt, ev, hs, wcache, htab, hctab


@_jit
def _ess_run(y, n, len_, ideg, njump, userw, rw, ys, tab, plan, scratch, bx, blo, w, acc):  # type: ignore[no-untyped-def]
    """``stless`` on a plan from :func:`_ess_plan`: loess of ``y[:n]`` into ``ys[:n]``.

    Interior windows are fitted in blocks (:func:`_fit_block`), the others one by one; linear
    interpolation in between, as the original.
    """
    if n < 2:
        ys[0] = y[0]
        return
    cnt, ev, hs, wcache, htab, hctab = plan
    newnj = min(njump, n - 1)
    # pass 1: the shared-table windows, in blocks
    nb = 0
    for e in range(cnt):
        if ev[3, e] < 0:
            bx[nb] = ev[0, e] + 1
            blo[nb] = ev[1, e] - 1
            nb += 1
            if nb == _BLOCK:
                _flush(y, n, ideg, nb, len_, htab, userw, rw, tab, ys, bx, blo, w, acc)
                nb = 0
    if nb > 0:
        _flush(y, n, ideg, nb, len_, htab, userw, rw, tab, ys, bx, blo, w, acc)
    # pass 2: windows with their own weights, in blocks of equal length
    nb = 0
    mb = 0
    for e in range(cnt):
        off = ev[3, e]
        if off < 0:
            continue
        m = ev[2, e] - ev[1, e] + 1
        if hs[e] <= 0.0 or m > w.shape[0]:
            i = ev[0, e]
            v = _fit(y, n, ideg, i + 1, ev[1, e], ev[2, e], hs[e], userw, rw, wcache[off:], scratch)
            ys[i] = y[i] if math.isnan(v) else v
            continue
        if nb > 0 and (m != mb or nb == _BLOCK):
            _flush_own(y, n, ideg, nb, mb, userw, rw, ys, bx, blo, w, acc)
            nb = 0
        mb = m
        for t in range(m):
            w[t, nb] = wcache[off + t]
        bx[nb] = ev[0, e] + 1
        blo[nb] = ev[1, e] - 1
        nb += 1
    if nb > 0:
        _flush_own(y, n, ideg, nb, mb, userw, rw, ys, bx, blo, w, acc)
    if newnj == 1:
        return
    k = _interp_jumps(ys, n, newnj)
    if k != n:
        off = ev[3, cnt]
        if off < 0:
            v = _fit(y, n, ideg, n, ev[1, cnt], ev[2, cnt], hs[cnt], userw, rw, tab, scratch)
        else:
            v = _fit(y, n, ideg, n, ev[1, cnt], ev[2, cnt], hs[cnt], userw, rw, wcache[off:], scratch)
        ys[n - 1] = y[n - 1] if math.isnan(v) else v
        _interp_tail(ys, n, k)


@_jit
def _ess_coefs(n, ideg, plan, tab, limit):  # type: ignore[no-untyped-def]
    """Final weights of every fit of a plan without robustness weights (they depend on sizes only).

    Fit ``e`` is then ``sum(coef[off[e]:off[e + 1]] * y[window])``: the products and the sum in
    the original's order, so the result is the same to the last bit. ``off[e] < 0`` marks a fit
    without weight (the original falls back to the data point). ``None``-like empty arrays when
    the plan needs more than ``limit`` coefficients.
    """
    cnt, ev, hs, wcache, htab, hctab = plan
    total = 0
    for e in range(cnt + 1):
        total += ev[2, e] - ev[1, e] + 1
    off = np.empty(cnt + 2, dtype=np.int64)
    if total > limit:
        return np.empty(0), off[:0]
    coef = np.empty(total)
    pos = 0
    for e in range(cnt + 1):
        xs = ev[0, e] + 1
        nl_ = ev[1, e]
        m = ev[2, e] - nl_ + 1
        lo = nl_ - 1
        src = tab if ev[3, e] < 0 else wcache[ev[3, e]:]
        w = coef[pos:pos + m]
        a = 0.0
        for t in range(m):
            w[t] = src[t]
            a += src[t]
        off[e] = pos
        pos += m
        if a <= 0.0:
            off[e] = -1
            continue
        for t in range(m):
            w[t] = w[t] / a
        if hs[e] > 0.0 and ideg > 0:
            a = 0.0
            for t in range(m):
                a += w[t] * (lo + t + 1)
            c = 0.0
            for t in range(m):
                d = lo + t + 1 - a
                c += w[t] * (d * d)
            if math.sqrt(c) > 0.001 * (n - 1.0):
                b = (xs - a) / c
                for t in range(m):
                    w[t] = w[t] * (b * (lo + t + 1 - a) + 1.0)
    off[cnt + 1] = pos
    return coef, off


@_jit
def _apply(y, ev, e, coef, off):  # type: ignore[no-untyped-def]
    o = off[e]
    i = ev[0, e]
    if o < 0:
        return y[i]
    lo = ev[1, e] - 1
    m = ev[2, e] - lo
    s = 0.0
    for t in range(m):
        s += coef[o + t] * y[lo + t]
    return s


@_jit
def _ess_fixed(y, n, njump, ys, plan, coef, off):  # type: ignore[no-untyped-def]
    """``stless`` without robustness weights, from the coefficients of :func:`_ess_coefs`."""
    if n < 2:
        ys[0] = y[0]
        return
    cnt, ev, hs, wcache, htab, hctab = plan
    newnj = min(njump, n - 1)
    e = 0
    # four fits at a time where their windows have the same length (independent sums overlap)
    while e + 3 < cnt:
        m = ev[2, e] - ev[1, e] + 1
        if (
            off[e] >= 0 and off[e + 1] >= 0 and off[e + 2] >= 0 and off[e + 3] >= 0
            and ev[2, e + 1] - ev[1, e + 1] + 1 == m
            and ev[2, e + 2] - ev[1, e + 2] + 1 == m
            and ev[2, e + 3] - ev[1, e + 3] + 1 == m
        ):
            o0, o1, o2, o3 = off[e], off[e + 1], off[e + 2], off[e + 3]
            l0, l1, l2, l3 = ev[1, e] - 1, ev[1, e + 1] - 1, ev[1, e + 2] - 1, ev[1, e + 3] - 1
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for t in range(m):
                s0 += coef[o0 + t] * y[l0 + t]
                s1 += coef[o1 + t] * y[l1 + t]
                s2 += coef[o2 + t] * y[l2 + t]
                s3 += coef[o3 + t] * y[l3 + t]
            ys[ev[0, e]] = s0
            ys[ev[0, e + 1]] = s1
            ys[ev[0, e + 2]] = s2
            ys[ev[0, e + 3]] = s3
            e += 4
        else:
            ys[ev[0, e]] = _apply(y, ev, e, coef, off)
            e += 1
    while e < cnt:
        ys[ev[0, e]] = _apply(y, ev, e, coef, off)
        e += 1
    if newnj == 1:
        return
    k = _interp_jumps(ys, n, newnj)
    if k != n:
        ys[n - 1] = _apply(y, ev, cnt, coef, off)
        _interp_tail(ys, n, k)


@_jit
def _ess(y, n, len_, ideg, njump, userw, rw, ys, tab, scratch, bx, blo, w, acc):  # type: ignore[no-untyped-def]
    """``stless`` planned and run at once (for smoothers used once)."""
    if n < 2:
        ys[0] = y[0]
        return
    plan = _ess_plan(n, len_, njump, tab)
    _ess_run(y, n, len_, ideg, njump, userw, rw, ys, tab, plan, scratch, bx, blo, w, acc)


@_jit
def _ma(x, n, len_, ave):  # type: ignore[no-untyped-def]
    """Moving average of length ``len_`` over ``x[:n]`` into ``ave[:n - len_ + 1]``."""
    newn = n - len_ + 1
    flen = float(len_)
    v = 0.0
    for i in range(len_):
        v += x[i]
    ave[0] = v / flen
    k = len_
    m = 0
    for j in range(1, newn):
        v += x[k] - x[m]
        ave[j] = v / flen
        k += 1
        m += 1


@_jit
def _fit4_mean(y, k, userw, rw, sw, w):  # type: ignore[no-untyped-def]
    """The four degree-0 fits of a cycle-subseries ``y[:k]`` (weights ``sw[0..3, :k]``) in one sweep.

    Each is :func:`_fit`'s weighted mean, same operations, same order; NaN when it has no weight.
    """
    w0 = w[0]
    w1 = w[1]
    w2 = w[2]
    w3 = w[3]
    s0 = sw[0]
    s1 = sw[1]
    s2 = sw[2]
    s3 = sw[3]
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    if userw:
        for t in range(k):
            r = rw[t]
            v0 = s0[t] * r
            v1 = s1[t] * r
            v2 = s2[t] * r
            v3 = s3[t] * r
            w0[t] = v0
            w1[t] = v1
            w2[t] = v2
            w3[t] = v3
            a0 += v0
            a1 += v1
            a2 += v2
            a3 += v3
    else:
        for t in range(k):
            w0[t] = s0[t]
            w1[t] = s1[t]
            w2[t] = s2[t]
            w3[t] = s3[t]
            a0 += s0[t]
            a1 += s1[t]
            a2 += s2[t]
            a3 += s3[t]
    r0 = 0.0
    r1 = 0.0
    r2 = 0.0
    r3 = 0.0
    for t in range(k):
        yt = y[t]
        r0 += (w0[t] / a0) * yt
        r1 += (w1[t] / a1) * yt
        r2 += (w2[t] / a2) * yt
        r3 += (w3[t] / a3) * yt
    if a0 <= 0.0:
        r0 = np.nan
    if a1 <= 0.0:
        r1 = np.nan
    if a2 <= 0.0:
        r2 = np.nan
    if a3 <= 0.0:
        r3 = np.nan
    return r0, r1, r2, r3


@_jit
def _ss(y, n, np_, ns, isdeg, nsjump, userw, rw, season, work1, work2, work3, tab, scratch, sw, sh, blk, w4):  # type: ignore[no-untyped-def]
    """``stlss``: each cycle-subseries smoothed and extended by one point at each end.

    When ``sh[0] >= 0`` every subseries is smoothed from its two end fits only (seasonal window
    at least the subseries length, jump at least its length - 1, as for a periodic window), and
    ``sw[r]`` / ``sh[r]`` hold the weights of the fits at ``xs = 1, k, 0, k + 1`` for subseries
    of ``k = kmax - r`` points (computed once per decomposition).
    """
    kmax = (n - 1) // np_ + 1
    for j in range(np_):
        k = (n - (j + 1)) // np_ + 1
        for i in range(k):
            work1[i] = y[i * np_ + j]
        if userw:
            for i in range(k):
                work3[i] = rw[i * np_ + j]
        if sh[0, 0] >= 0.0 and isdeg == 0:
            r = kmax - k
            f1, fk, f0, fk1 = _fit4_mean(work1, k, userw, work3, sw[r], w4)
            work2[1] = work1[0] if math.isnan(f1) else f1
            work2[k] = work1[k - 1] if math.isnan(fk) else fk
            if k > 2:
                delta = (work2[k] - work2[1]) / (k - 1)
                for i in range(1, k - 1):
                    work2[1 + i] = work2[1] + delta * i
            work2[0] = work2[1] if math.isnan(f0) else f0
            work2[k + 1] = work2[k] if math.isnan(fk1) else fk1
        elif sh[0, 0] >= 0.0:
            r = kmax - k
            h = sh[r, 0]
            v = _fit(work1, k, isdeg, 1, 1, k, h, userw, work3, sw[r, 0], scratch)
            work2[1] = work1[0] if math.isnan(v) else v
            v = _fit(work1, k, isdeg, k, 1, k, h, userw, work3, sw[r, 1], scratch)
            work2[k] = work1[k - 1] if math.isnan(v) else v
            if k > 2:
                delta = (work2[k] - work2[1]) / (k - 1)
                for i in range(1, k - 1):
                    work2[1 + i] = work2[1] + delta * i
            h = sh[r, 1]
            v = _fit(work1, k, isdeg, 0, 1, k, h, userw, work3, sw[r, 2], scratch)
            work2[0] = work2[1] if math.isnan(v) else v
            v = _fit(work1, k, isdeg, k + 1, 1, k, h, userw, work3, sw[r, 3], scratch)
            work2[k + 1] = work2[k] if math.isnan(v) else v
        else:
            _ess(work1, k, ns, isdeg, nsjump, userw, work3, work2[1:], tab, scratch, *blk)
            nright = min(ns, k)
            v = _est(work1, k, ns, isdeg, 0, 1, nright, userw, work3, tab, -1.0, -1, scratch)
            work2[0] = work2[1] if math.isnan(v) else v
            nleft = max(1, k - ns + 1)
            v = _est(work1, k, ns, isdeg, k + 1, nleft, k, userw, work3, tab, -1.0, -1, scratch)
            work2[k + 1] = work2[k] if math.isnan(v) else v
        for m in range(k + 2):
            season[m * np_ + j] = work2[m]


@_jit
def _seasonal_tables(n, np_, ns, nsjump, sw, sh):  # type: ignore[no-untyped-def]
    """Fill ``sw`` / ``sh`` for :func:`_ss`'s two-fit path, or set ``sh[0, 0] = -1`` when it does not apply."""
    kmax = (n - 1) // np_ + 1
    kmin = n // np_
    sh[0, 0] = -1.0
    if not (ns >= kmax and nsjump >= kmax - 1 and kmin >= 2):
        return
    for r in range(kmax - kmin + 1):
        k = kmax - r
        extra = float((ns - k) // 2) if ns > k else 0.0
        h = float(k - 1) + extra
        _weights(1, 1, k, h, sw[r, 0])
        _weights(k, 1, k, h, sw[r, 1])
        sh[r, 0] = h
        h = float(k) + extra
        _weights(0, 1, k, h, sw[r, 2])
        _weights(k + 1, 1, k, h, sw[r, 3])
        sh[r, 1] = h


@_jit
def _median_pair(a, n):  # type: ignore[no-untyped-def]
    """Sum of the order statistics ``n // 2`` and ``n - n // 2 - 1`` of ``a[:n]`` (``a`` is reordered)."""
    m = n // 2
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        # median of three as pivot
        x, y, z = a[lo], a[mid], a[hi]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
            if x > y:
                y = x
        pivot = y
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if m <= j:
            hi = j
        elif m >= i:
            lo = i
        else:
            break
    upper = a[m]
    if n - m - 1 == m:
        return upper + upper
    # the (m-1)-th order statistic is the largest value left of position m
    lower = a[0]
    for t in range(1, m):
        if a[t] > lower:
            lower = a[t]
    return lower + upper


@_jit
def stl_setup(n, np_, ns, nt, nl, isdeg, itdeg, ildeg, nsjump, ntjump, nljump):  # type: ignore[no-untyped-def]
    """What the decomposition of any ``n``-point series with these settings shares: the seasonal
    weight tables and the trend / low-pass plans and coefficients (read-only while decomposing,
    so series of the same length and period reuse them, also across threads)."""
    kmax = (n - 1) // np_ + 1
    sw = np.empty((2, 4, kmax))
    sh = np.empty((2, 2))
    _seasonal_tables(n, np_, ns, nsjump, sw, sh)
    tab_t = np.empty(nt + 2)
    tab_l = np.empty(nl + 2)
    plan_t = _ess_plan(n, nt, ntjump, tab_t)
    plan_l = _ess_plan(n, nl, nljump, tab_l)
    coef_t, off_t = _ess_coefs(n, itdeg, plan_t, tab_t, _COEF_LIMIT)
    coef_l, off_l = _ess_coefs(n, ildeg, plan_l, tab_l, _COEF_LIMIT)
    return sw, sh, tab_t, tab_l, plan_t, plan_l, coef_t, off_t, coef_l, off_l


@_jit
def stl_core(y, np_, ns, nt, nl, isdeg, itdeg, ildeg, nsjump, ntjump, nljump, ni, no, trend, season):  # type: ignore[no-untyped-def]
    """Full STL of ``y`` (``stl`` + ``stlstp`` + ``stlrwt``) into ``trend`` and ``season``."""
    setup = stl_setup(len(y), np_, ns, nt, nl, isdeg, itdeg, ildeg, nsjump, ntjump, nljump)
    stl_run(y, np_, ns, nt, nl, isdeg, itdeg, ildeg, nsjump, ntjump, nljump, ni, no, trend, season, setup)


@_jit
def stl_run(y, np_, ns, nt, nl, isdeg, itdeg, ildeg, nsjump, ntjump, nljump, ni, no, trend, season, setup):  # type: ignore[no-untyped-def]
    """:func:`stl_core` given the :func:`stl_setup` of ``len(y)`` points and these settings."""
    sw, sh, tab_t, tab_l, plan_t, plan_l, coef_t, off_t, coef_l, off_l = setup
    n = len(y)
    m = n + 2 * np_
    work = np.zeros((5, m))
    rw = np.ones(n)
    tab = np.empty(max(nt, nl, ns if ns < n else 1) + 2)
    scratch = np.empty(n + 2)
    sscr = np.empty((4, (n - 1) // np_ + 1))
    blk = (
        np.empty(_BLOCK, dtype=np.int64),
        np.empty(_BLOCK, dtype=np.int64),
        np.empty((max(nt, nl, ns if ns < n else 1), _BLOCK)),
        np.empty((5, _BLOCK)),
    )
    for i in range(n):
        trend[i] = 0.0
        season[i] = 0.0
    userw = False
    k = 0
    w0 = work[0]
    w1 = work[1]
    w2 = work[2]
    w3 = work[3]
    w4 = work[4]
    while True:
        for _ in range(ni):
            for i in range(n):
                w0[i] = y[i] - trend[i]
            _ss(w0, n, np_, ns, isdeg, nsjump, userw, rw, w1, w2, w3, w4, tab, scratch, sw, sh, blk, sscr)
            _ma(w1, m, np_, w2)
            _ma(w2, m - np_ + 1, np_, w0)
            _ma(w0, m - 2 * np_ + 2, 3, w2)
            if len(off_l):
                _ess_fixed(w2, n, nljump, w0, plan_l, coef_l, off_l)
            else:
                _ess_run(w2, n, nl, ildeg, nljump, False, w3, w0, tab_l, plan_l, scratch, *blk)
            for i in range(n):
                season[i] = w1[np_ + i] - w0[i]
                w0[i] = y[i] - season[i]
            if not userw and len(off_t):
                _ess_fixed(w0, n, ntjump, trend, plan_t, coef_t, off_t)
            else:
                _ess_run(w0, n, nt, itdeg, ntjump, userw, rw, trend, tab_t, plan_t, scratch, *blk)
        k += 1
        if k > no:
            break
        for i in range(n):
            rw[i] = abs(y[i] - (trend[i] + season[i]))
            w0[i] = rw[i]
        cmad = 3.0 * _median_pair(w0, n)
        if cmad == 0.0:
            for i in range(n):
                rw[i] = 1.0
        else:
            c9 = 0.999 * cmad
            c1 = 0.001 * cmad
            for i in range(n):
                r = rw[i]
                if r <= c1:
                    rw[i] = 1.0
                elif r <= c9:
                    q = r / cmad
                    q = 1.0 - q * q
                    rw[i] = q * q
                else:
                    rw[i] = 0.0
        userw = True


@_jit
def azure_windows(n, period):  # type: ignore[no-untyped-def]
    """``(ns, nt, nl, nsjump, ntjump, nljump)`` of Azure's STL for ``n`` points and ``period``."""
    ns = 10 * n + 1
    nt = int(math.ceil(1.5 * period / (1 - 1.5 / ns)))
    if nt % 2 == 0:
        nt += 1
    nl = period if period % 2 == 1 else period + 1  # R's nextodd(period), as the release's STL
    return ns, nt, nl, (ns + 9) // 10, (nt + 9) // 10, (nl + 9) // 10


@_jit
def _azure_setup(n, period):  # type: ignore[no-untyped-def]
    ns, nt, nl, nsj, ntj, nlj = azure_windows(n, period)
    return stl_setup(n, period, ns, nt, nl, 0, 1, 1, nsj, ntj, nlj)


@_jit
def _azure_run(y, period, trend, season, setup):  # type: ignore[no-untyped-def]
    ns, nt, nl, nsj, ntj, nlj = azure_windows(len(y), period)
    stl_run(y, period, ns, nt, nl, 0, 1, 1, nsj, ntj, nlj, 1, 15, trend, season, setup)


@_jit
def _azure_range(values, offsets, periods, order, lo, hi, trend, season):  # type: ignore[no-untyped-def]
    """Series ``order[lo:hi]`` one after the other, sharing the setup while length and period repeat."""
    s = order[lo]
    n0 = offsets[s + 1] - offsets[s]
    p0 = periods[s]
    setup = _azure_setup(n0, p0)
    for idx in range(lo, hi):
        s = order[idx]
        a = offsets[s]
        b = offsets[s + 1]
        if b - a != n0 or periods[s] != p0:
            n0 = b - a
            p0 = periods[s]
            setup = _azure_setup(n0, p0)
        _azure_run(values[a:b], p0, trend[a:b], season[a:b], setup)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def stl_batch_kernel(values, offsets, periods, order, n_chunks, trend, season):  # type: ignore[no-untyped-def]
    """Azure STL of every series ``values[offsets[i]:offsets[i+1]]`` with ``periods[i]``, in parallel.

    ``order`` lists the series sorted by (length, period); it is cut into ``n_chunks`` runs
    decomposed in parallel, each reusing one setup while length and period repeat.
    """
    n_series = len(order)
    for c in prange(n_chunks):
        lo = c * n_series // n_chunks
        hi = (c + 1) * n_series // n_chunks
        if hi > lo:
            _azure_range(values, offsets, periods, order, lo, hi, trend, season)


@_jit
def stl_batch_serial(values, offsets, periods, order, trend, season):  # type: ignore[no-untyped-def]
    """:func:`stl_batch_kernel` in the calling thread (no thread-pool wake-up for small batches)."""
    if len(order):
        _azure_range(values, offsets, periods, order, 0, len(order), trend, season)
