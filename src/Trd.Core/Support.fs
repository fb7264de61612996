namespace Trd.Core

/// The set of vocabulary entries a position's divergence is evaluated on.
///
/// - FullVocabulary: all of 𝒱 (the paper's default for every method, App. C.7).
/// - TeacherTopK k: the teacher's top-k entries 𝒮_t, with both π_T and π_θ renormalised to sum to 1
///   on 𝒮_t before the divergence (the paper's "Reverse KL w/ Top-K", K = 32, App. C.8).
/// - TeacherTopKWithTail k: 𝒮_t plus one tail bucket holding the rest of each distribution,
///   log(1 − Σ_{v∈𝒮_t} p(v)). Both sides are then proper distributions on k + 1 buckets, so the
///   divergence is ≥ 0 by construction (frameworks that sum over 𝒮_t without renormalising or a tail
///   can go negative and clamp at zero); by the data-processing inequality it never exceeds the
///   full-vocabulary value.
type Support =
    | FullVocabulary
    | TeacherTopK of K: int
    | TeacherTopKWithTail of K: int

    override this.ToString() =
        match this with
        | FullVocabulary -> "full vocabulary"
        | TeacherTopK k -> $"teacher top-{k}"
        | TeacherTopKWithTail k -> $"teacher top-{k} + tail"

    /// The teacher's top-K entries, both sides renormalised (C#: <c>Support.TopK(32)</c>).
    static member TopK(k: int) = TeacherTopK k
    /// The teacher's top-K entries plus one tail bucket (C#: <c>Support.TopKWithTail(32)</c>).
    static member TopKWithTail(k: int) = TeacherTopKWithTail k

/// A pair of log-probability vectors over the same support buckets.
[<Struct>]
type SupportedPair = { TeacherLogProbs: float[]; StudentLogProbs: float[] }

module Support =

    /// Throws unless k ≥ 1 and k ≤ V (for the top-K supports).
    [<CompiledName("Check")>]
    let check (support: Support) (vocabularySize: int) =
        match support with
        | FullVocabulary -> ()
        | TeacherTopK k
        | TeacherTopKWithTail k ->
            if k < 1 then invalidArg "k" $"top-K needs K ≥ 1, got K = {k}"
            if k > vocabularySize then invalidArg "k" $"top-K with K = {k} exceeds the vocabulary size V = {vocabularySize}"

    /// Indices of the k largest entries, largest first; ties go to the lower index.
    [<CompiledName("TopKIndices")>]
    let topKIndices (k: int) (xs: float[]) : int[] =
        Array.init xs.Length id
        |> Array.sortWith (fun a b -> let c = compare xs[b] xs[a] in if c <> 0 then c else compare a b)
        |> Array.truncate k

    let private renormalise (xs: float[]) =
        let z = Numerics.logSumExp xs
        // A side with no mass on the support stays −∞ everywhere (its divergence is then +∞, not NaN).
        if System.Double.IsNegativeInfinity z then xs else xs |> Array.map (fun x -> x - z)

    /// The selected entries followed by the tail bucket log Σ_{v∉𝒮} p(v). This equals log(1 − Σ_{v∈𝒮} p(v)) but
    /// is summed over the complement directly: when the selected mass rounds to 1 the subtraction loses every
    /// digit (a tail of −∞ on one side only makes the divergence +∞). An empty complement (K = V) is −∞.
    let private withTail (logProbs: float[]) (selected: int[]) =
        let inSelected = System.Collections.Generic.HashSet<int>(selected)
        let rest = [| for i in 0 .. logProbs.Length - 1 do if not (inSelected.Contains i) then logProbs[i] |]
        let tail = if rest.Length = 0 then System.Double.NegativeInfinity else Numerics.logSumExp rest
        Array.append (selected |> Array.map (fun i -> logProbs[i])) [| tail |]

    /// Restricts full-vocabulary log-probabilities (already at the recipe's temperature) to the support.
    /// The top-K set is always chosen from the teacher.
    [<CompiledName("Restrict")>]
    let restrict (support: Support) (teacherLogProbs: float[]) (studentLogProbs: float[]) : SupportedPair =
        if teacherLogProbs.Length <> studentLogProbs.Length then
            invalidArg "studentLogProbs" $"vocabulary sizes differ: teacher V = {teacherLogProbs.Length}, student V = {studentLogProbs.Length}"
        check support teacherLogProbs.Length
        match support with
        | FullVocabulary -> { TeacherLogProbs = teacherLogProbs; StudentLogProbs = studentLogProbs }
        | TeacherTopK k ->
            let s = topKIndices k teacherLogProbs
            { TeacherLogProbs = s |> Array.map (fun i -> teacherLogProbs[i]) |> renormalise
              StudentLogProbs = s |> Array.map (fun i -> studentLogProbs[i]) |> renormalise }
        | TeacherTopKWithTail k ->
            let s = topKIndices k teacherLogProbs
            { TeacherLogProbs = withTail teacherLogProbs s
              StudentLogProbs = withTail studentLogProbs s }
