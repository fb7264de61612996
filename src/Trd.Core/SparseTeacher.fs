namespace Trd.Core

open System

/// One position of a teacher known only by its top-K, as a served engine scores a given sequence (vLLM's
/// `prompt_logprobs: K`, SGLang's `input_top_logprobs`): the K most likely ids with their log-probabilities at T = 1,
/// largest first, and the log-probability at T = 1 of the trajectory's own token (which may lie outside the top-K).
type SparseTeacherPosition =
    { /// The teacher's top-K ids, most likely first (ties: the lower id first, as Support.topKIndices orders them).
      Ids: int[]
      /// log π_T(v) at T = 1 for each id: log-probabilities of the whole vocabulary, not renormalised over the K.
      LogProbs: float[]
      /// log π_T(y_t) at T = 1 of the trajectory's token y_t (−∞ when the engine did not report it).
      TargetLogProb: float }

/// The float64 reference of a recipe evaluated against a sparse teacher (issue 14, §2). The teacher's distribution is
/// known on K + 1 buckets: its top-K ids and one tail bucket holding the rest, log(1 − Σ_K p). The student stays dense.
///
/// - Supports "top-K" and "top-K + tail" with K' ≤ K run exactly at T = 1: the K' ids and their log-probabilities
///   are the dense teacher's, and the tail is the rest of its mass.
/// - A temperature T ≠ 1 is applied over the K + 1 buckets, the tail treated as one token:
///   log p_T(v) = log p(v) / T − log Σ_buckets p(b)^(1/T). This is exact when the tail holds no mass (K = V) and an
///   approximation otherwise (the tail's own entries would each be raised to 1/T before summing); it is the one place
///   a served teacher differs from the dense reference, and it vanishes with the tail.
/// - The sampled estimators read log π_T(y_t) from TargetLogProb under the same tempering.
/// - The full vocabulary with the exact estimator needs every entry of the teacher: refused, naming what would work.
module SparseTeacher =

    /// The sparse view of dense teacher logits (what a server returns for them): the top-K at T = 1 and the target's
    /// log-probability (pass target −1 when there is none).
    [<CompiledName("OfLogits")>]
    let ofLogits (k: int) (teacherLogits: float[]) (target: int) : SparseTeacherPosition =
        Numerics.checkLogits "teacherLogits" teacherLogits
        if k < 1 || k > teacherLogits.Length then invalidArg "k" $"K = {k} must lie in [1, V = {teacherLogits.Length}]"
        let lp = Numerics.temperedLogProbs 1.0 teacherLogits
        let ids = Support.topKIndices k lp
        { Ids = ids
          LogProbs = ids |> Array.map (fun i -> lp[i])
          TargetLogProb = if target >= 0 && target < lp.Length then lp[target] else Double.NegativeInfinity }

    /// Every reason `recipe` cannot be evaluated against a teacher stored with K entries per position; empty when it can.
    [<CompiledName("Problems")>]
    let problems (recipe: Recipe) (k: int) : string[] =
        let works = $"support 'top-k' or 'top-k-tail' with top_k ≤ {k}, or a sampled estimator (k1, k2, k3)"
        [| if Estimator.isSampled recipe.Estimator then ()
           else
               match recipe.Support with
               | FullVocabulary ->
                   $"recipe '{recipe.Name}' needs the teacher's full vocabulary, but a served teacher gives its top-{k} per position; use {works}"
               | TeacherTopK k' | TeacherTopKWithTail k' when k' > k ->
                   $"recipe '{recipe.Name}' needs the teacher's top-{k'}, but only its top-{k} is stored; use {works}"
               | _ -> ()
           if recipe.IsShaped then
               $"recipe '{recipe.Name}' is shaped: its gates and weights read the full-vocabulary reverse KL and the student's entropy, which a top-{k} teacher does not give; run it with the teacher model" |]

    let private logSumExp (xs: float[]) = if xs.Length = 0 then Double.NegativeInfinity else Numerics.logSumExp xs

    /// The tail bucket log(1 − Σ_K p) of log-probabilities at T = 1: −∞ when the K ids are the whole vocabulary of
    /// size V (what rounding leaves of 1 − Σ p there is no mass) or when the top-K already sums to 1.
    let private tail (vocabulary: int) (logProbs: float[]) =
        let top = logSumExp logProbs
        if logProbs.Length >= vocabulary || top >= 0.0 then Double.NegativeInfinity
        else Numerics.log1mExp top                              // log(1 − e^top), accurate at both ends

    /// The teacher at temperature T on its K + 1 buckets over a vocabulary of V ids: [| log p_T(id_1) … log p_T(id_K);
    /// log p_T(tail) |], and the log-normaliser log Σ_b p(b)^(1/T) it was divided by (to temper the target's
    /// log-probability the same way).
    [<CompiledName("Buckets")>]
    let buckets (temperature: float) (vocabulary: int) (teacher: SparseTeacherPosition) : float[] * float =
        let raw = Array.append teacher.LogProbs [| tail vocabulary teacher.LogProbs |]
        let scaled = if temperature = 1.0 then raw else raw |> Array.map (fun x -> x / temperature)
        let z = logSumExp scaled
        scaled |> Array.map (fun x -> x - z), z

    let private check (teacher: SparseTeacherPosition) (vocabulary: int) =
        if teacher.Ids.Length = 0 || teacher.Ids.Length <> teacher.LogProbs.Length then
            invalidArg "teacher" $"a sparse position needs K ≥ 1 ids and as many log-probabilities, got {teacher.Ids.Length} and {teacher.LogProbs.Length}"
        for i in teacher.Ids do
            if i < 0 || i >= vocabulary then invalidArg "teacher" $"teacher id {i} lies outside the student's vocabulary (V = {vocabulary})"
        if teacher.Ids |> Array.distinct |> Array.length <> teacher.Ids.Length then invalidArg "teacher" "teacher ids repeat"
        for x in teacher.LogProbs do
            if Double.IsNaN x || x > 1e-9 then invalidArg "teacher" $"a teacher log-probability must be ≤ 0, got {x}"

    let private renormalise (xs: float[]) =
        let z = logSumExp xs
        if Double.IsNegativeInfinity z then xs else xs |> Array.map (fun x -> x - z)

    /// The teacher's and the student's log-probabilities restricted to the recipe's support, at its temperature:
    /// top-K' (renormalised) or top-K' + tail, K' ≤ K, the K' being the teacher's most likely.
    [<CompiledName("Restrict")>]
    let restrict (recipe: Recipe) (teacher: SparseTeacherPosition) (studentLogProbs: float[]) : SupportedPair =
        let lt, _ = buckets recipe.Temperature studentLogProbs.Length teacher          // [K + 1]
        let k = teacher.Ids.Length
        match recipe.Support with
        | TeacherTopK k' when k' <= k ->
            { TeacherLogProbs = lt[.. k' - 1] |> renormalise
              StudentLogProbs = teacher.Ids[.. k' - 1] |> Array.map (fun i -> studentLogProbs[i]) |> renormalise }
        | TeacherTopKWithTail k' when k' <= k ->
            let selected = System.Collections.Generic.HashSet<int>(teacher.Ids[.. k' - 1])
            let studentRest = [| for v in 0 .. studentLogProbs.Length - 1 do if not (selected.Contains v) then studentLogProbs[v] |]
            { TeacherLogProbs = Array.append lt[.. k' - 1] [| logSumExp lt[k' ..] |]          // the stored rest and the tail
              StudentLogProbs = Array.append (teacher.Ids[.. k' - 1] |> Array.map (fun i -> studentLogProbs[i])) [| logSumExp studentRest |] }
        | s -> invalidArg "recipe" $"support {s} cannot be evaluated against a top-{k} teacher"

    /// One position, as Objective.position, with the teacher known by its top-K.
    [<CompiledName("Position")>]
    let position (recipe: Recipe) (teacher: SparseTeacherPosition) (studentLogits: float[]) (target: int) : PositionValue =
        recipe.Validate() |> ignore
        match problems recipe teacher.Ids.Length with
        | [||] -> ()
        | ps -> invalidArg "recipe" (String.Join("; ", ps))
        Numerics.checkLogits "studentLogits" studentLogits
        check teacher studentLogits.Length
        let ls = Numerics.temperedLogProbs recipe.Temperature studentLogits
        if Estimator.isSampled recipe.Estimator then
            Objective.checkTarget target ls.Length
            let _, z = buckets recipe.Temperature ls.Length teacher
            Objective.ofDivergence recipe (Estimator.fromLogRatio recipe.Estimator (ls[target] - (teacher.TargetLogProb / recipe.Temperature - z)))
        else Objective.ofDivergence recipe (Objective.supportDivergence recipe (restrict recipe teacher ls))

    /// A batch of positions, reduced exactly as Objective.evaluate reduces the dense ones.
    [<CompiledName("Evaluate")>]
    let evaluate (recipe: Recipe) (teacher: SparseTeacherPosition[]) (student: float[][]) (mask: float[]) (targets: int[]) (normaliser: float) =
        let n = teacher.Length
        if student.Length <> n then invalidArg "student" $"teacher has {n} positions but student has {student.Length}"
        if Estimator.isSampled recipe.Estimator && targets.Length <> n then
            invalidArg "targets" $"the sampled estimator needs {n} targets, got {targets.Length}"
        let values = Array.init n (fun i -> position recipe teacher[i] student[i] (if targets.Length = n then targets[i] else -1))
        Objective.reduce values mask normaliser
