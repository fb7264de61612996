namespace Trd.Core

open System

/// Loss-level clipping of large divergences.
///
/// - NoClip.
/// - PerPosition c: the paper's cap min(D_t, c) applied to each position's divergence before averaging
///   over the response mask (App. C.8; c = 0.1 for OPD, 0.06 for OPSD, Table 13). A position with
///   D_t > c contributes the constant c and so no gradient.
/// - PerVocabEntry c: caps every vocabulary entry's term p(v)(log p(v) − log q(v)) at c before summing
///   over v, as another implementation of the same paper does. A different objective: named apart.
type Clip =
    | NoClip
    | PerPosition of C: float
    | PerVocabEntry of C: float

    override this.ToString() =
        match this with
        | NoClip -> "no clip"
        | PerPosition c -> $"clip D at {c}"
        | PerVocabEntry c -> $"clip each vocabulary term at {c}"

    /// The paper's per-position cap min(D_t, c) (C#: <c>Clip.PerPositionAt(0.1)</c>).
    static member PerPositionAt(c: float) = PerPosition c
    /// A cap on each vocabulary entry's term (C#: <c>Clip.PerVocabEntryAt(0.1)</c>).
    static member PerVocabEntryAt(c: float) = PerVocabEntry c

module Clip =

    /// Throws unless c > 0 (and finite).
    [<CompiledName("Check")>]
    let check (clip: Clip) =
        match clip with
        | NoClip -> ()
        | PerPosition c
        | PerVocabEntry c ->
            if Double.IsNaN c || c <= 0.0 || Double.IsInfinity c then
                invalidArg "c" $"the clip constant c must be a finite number > 0, got {c}"

    /// Whether a position's divergence is capped (D > c; at D = c the gradient still flows, as torch.clamp).
    [<CompiledName("IsClipped")>]
    let isClipped (clip: Clip) (divergence: float) =
        match clip with
        | PerPosition c -> divergence > c
        | NoClip
        | PerVocabEntry _ -> false

    /// The per-entry terms after per-entry clipping (identity for the other clips).
    [<CompiledName("ApplyToEntries")>]
    let applyToEntries (clip: Clip) (terms: float[]) =
        match clip with
        | PerVocabEntry c -> terms |> Array.map (fun x -> min x c)
        | NoClip
        | PerPosition _ -> terms

    /// The position's contribution after per-position clipping (identity for the other clips).
    [<CompiledName("ApplyToPosition")>]
    let applyToPosition (clip: Clip) (divergence: float) =
        match clip with
        | PerPosition c -> min divergence c
        | NoClip
        | PerVocabEntry _ -> divergence
