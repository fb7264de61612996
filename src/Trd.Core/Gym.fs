namespace Trd.Core

open System
open System.Text

/// A problem of the prefix-failure gym: add distinct digits left to right, one running sum per line.
/// Terms are distinct so that "the term after the one just added" is unambiguous.
type GymProblem =
    { Id: string
      /// The digits to add, in order (each 1–9, distinct, at least 2).
      Terms: int[] }

/// How a slip continues: Carry keeps the wrong partial sum to the end (a wrong answer); Fix writes
/// "Wait, a+d=s" on the next line and continues from the right sum.
type SlipMode =
    | Carry
    | Fix

/// A wrong partial sum at step Step (0-based: step i adds term i+1), off by Delta.
type Slip = { Step: int; Delta: int; Mode: SlipMode }

/// The split a problem belongs to, by a hash of its terms: evaluation, the study's distillation corpus, or
/// pretraining. No problem is in two splits, so the held-out problems are never seen in training.
type GymSplit =
    | Heldout
    | Corpus
    | Pretraining

/// The difficulty knob: how many terms a problem has (each step is a chance to slip).
type GymLevel = { MinTerms: int; MaxTerms: int }

/// How a caught slip is corrected in the gym's data (docs/gym.md, "Knobs"): the length of the correction path ȳ*
/// after a wrong line, the quantity the paper's mechanism (§4.1) turns on.
/// - Line: "Wait, " and the corrected line, then on (one cheap move; the gym's default);
/// - Restart: "Wait, let me redo this." and the whole solution again from its first line (a long recovery);
/// - Never: mistakes are never corrected in any data (every slip is carried to a wrong answer).
type Recovery =
    | Line
    | Restart
    | Never

    /// The word of configs and `--grid`: "line", "restart", "none".
    member r.ConfigName =
        match r with
        | Line -> "line"
        | Restart -> "restart"
        | Never -> "none"

    /// The recovery named by a config word; raises naming the word and the choices.
    static member Parse(name: string) =
        match name with
        | "line" -> Line
        | "restart" -> Restart
        | "none" -> Never
        | _ -> invalidArg "name" $"unknown recovery '{name}' (expected line, restart or none)"

    /// Every recovery, ordered by the length of the correction path: line < restart < none (never recovered).
    static member All = [| Line; Restart; Never |]

/// The gym's task family (docs/gym.md): running sums written one step per line,
///
///     Add 7 3 8 5.
///     7+3=10
///     10+8=18
///     18+5=23
///     \boxed{23}
///
/// A wrong partial sum carries into every later line, so one early slip makes the right answer unreachable
/// unless the solution backtracks ("Wait, 10+8=18") — prefix failure in miniature.
module Gym =

    /// The default level: 3 to 7 terms.
    [<CompiledName("DefaultLevel")>]
    let defaultLevel = { MinTerms = 3; MaxTerms = 7 }

    let private check (terms: int[]) =
        if obj.ReferenceEquals(terms, null) || terms.Length < 2 then invalidArg "terms" "a gym problem has at least 2 terms"
        for t in terms do
            if t < 1 || t > 9 then invalidArg "terms" $"terms are digits 1–9, got {t}"
        if (Array.distinct terms).Length <> terms.Length then
            invalidArg "terms" $"""terms are distinct, got {String.Join(" ", terms)}"""

    /// The question x: "Add 7 3 8 5."
    [<CompiledName("Question")>]
    let question (terms: int[]) =
        check terms
        "Add " + String.Join(" ", terms) + "."

    /// The running sums s_1 … s_{n-1} (s_i = t_0 + … + t_i).
    [<CompiledName("PartialSums")>]
    let partialSums (terms: int[]) =
        check terms
        Array.scan (+) terms[0] terms[1..] |> Array.tail

    /// The final answer, as the verifier compares it.
    [<CompiledName("Answer")>]
    let answer (terms: int[]) = string (Array.sum terms)

    let private line (sb: StringBuilder) (a: int) (d: int) (s: int) =
        sb.Append(a).Append('+').Append(d).Append('=').Append(s).Append('\n') |> ignore

    /// The words that open a restart: the whole solution follows again from its first line.
    [<CompiledName("RestartPhrase")>]
    let restartPhrase = "Wait, let me redo this.\n"

    /// A solution with the given slips (at most one per step; steps in range), its caught slips corrected in the
    /// given form. A Carry slip continues from the wrong sum. A Fix slip is, under Line, followed by "Wait, a+d=s"
    /// and the solution continues from the right sum; under Restart, followed by "Wait, let me redo this." and every
    /// line from the first again, right up to this step, then on; under Never it is an error (nothing is corrected).
    /// The boxed answer is the last running sum written.
    [<CompiledName("Render")>]
    let render (recovery: Recovery) (terms: int[]) (slips: Slip[]) =
        check terms
        let steps = terms.Length - 1
        for s in slips do
            if s.Step < 0 || s.Step >= steps then invalidArg "slips" $"slip at step {s.Step}: the problem has steps 0–{steps - 1}"
            if s.Delta = 0 then invalidArg "slips" $"slip at step {s.Step} has delta 0"
        if (slips |> Array.distinctBy _.Step).Length <> slips.Length then invalidArg "slips" "two slips at one step"
        let sb = StringBuilder()
        let mutable acc = terms[0]
        for i in 0 .. steps - 1 do
            let d = terms[i + 1]
            let right = acc + d
            match slips |> Array.tryFind (fun s -> s.Step = i) with
            | Some { Delta = delta; Mode = Carry } ->
                line sb acc d (right + delta)
                acc <- right + delta
            | Some { Delta = delta; Mode = Fix } ->
                line sb acc d (right + delta)
                match recovery with
                | Line ->
                    sb.Append("Wait, ") |> ignore
                    line sb acc d right
                | Restart ->
                    sb.Append(restartPhrase) |> ignore
                    let mutable redo = terms[0]
                    for j in 0 .. i do
                        line sb redo terms[j + 1] (redo + terms[j + 1])
                        redo <- redo + terms[j + 1]
                | Never -> invalidArg "slips" $"slip at step {i} is caught (Fix), but recovery 'none' never corrects a mistake"
                acc <- right
            | None ->
                line sb acc d right
                acc <- right
        sb.Append("\\boxed{").Append(acc).Append('}').ToString()

    /// A solution with the given slips, caught ones corrected by "Wait, " and the right line (`render Line`).
    [<CompiledName("WithSlips")>]
    let withSlips (terms: int[]) (slips: Slip[]) = render Line terms slips

    /// The reference solution y*: every step right.
    [<CompiledName("Solution")>]
    let solution (terms: int[]) = withSlips terms [||]

    /// The first line where a written solution departs from y* (0-based), or null when every line it wrote agrees
    /// with y* (a last, unfinished line counts as agreeing when it is the start of y*'s line).
    [<CompiledName("FirstError")>]
    let firstError (terms: int[]) (text: string) =
        let reference = (solution terms).Split('\n')
        let written = text.Split('\n')
        let last = written.Length - 1
        seq { 0 .. min last (reference.Length - 1) }
        |> Seq.tryFind (fun i -> written[i] <> reference[i] && not (i = last && reference[i].StartsWith written[i]))
        |> Option.orElse (if written.Length > reference.Length then Some reference.Length else None)
        |> Option.toNullable

    /// The split of a problem: FNV-1a over its terms, 1 in 8 held out, 1 in 8 for the study's corpus.
    [<CompiledName("Split")>]
    let split (terms: int[]) =
        let mutable h = 2166136261u
        for t in terms do
            h <- (h ^^^ uint32 t) * 16777619u
        match h % 8u with
        | 0u -> Heldout
        | 1u -> Corpus
        | _ -> Pretraining

    /// SplitMix64: the gym's one source of randomness, the same on every machine.
    type Rng(seed: uint64) =
        let mutable state = seed
        /// The next 64 random bits.
        member _.Next() =
            state <- state + 0x9E3779B97F4A7C15UL
            let mutable z = state
            z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
            z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
            z ^^^ (z >>> 31)
        /// Uniform in [0, n).
        member r.Below(n: int) = int (r.Next() % uint64 n)
        /// Uniform in [0, 1).
        member r.Unit() = float (r.Next() >>> 11) / 9007199254740992.0

    /// A random problem's terms at a level (uniform term count, then distinct digits in random order).
    [<CompiledName("DrawTerms")>]
    let drawTerms (rng: Rng) (level: GymLevel) =
        if level.MinTerms < 2 || level.MaxTerms > 9 || level.MinTerms > level.MaxTerms then
            invalidArg "level" $"terms per problem must satisfy 2 ≤ min ≤ max ≤ 9, got {level.MinTerms}–{level.MaxTerms}"
        let n = level.MinTerms + rng.Below(level.MaxTerms - level.MinTerms + 1)
        let digits = [| 1..9 |]
        for i in 8 .. -1 .. 1 do
            let j = rng.Below(i + 1)
            let t = digits[i]
            digits[i] <- digits[j]
            digits[j] <- t
        digits[.. n - 1]

    /// A random problem's terms from one split (rejection sampling; about 1 draw in 8 is kept for the small splits).
    [<CompiledName("DrawFrom")>]
    let drawFrom (rng: Rng) (level: GymLevel) (wanted: GymSplit) =
        let rec go () =
            let terms = drawTerms rng level
            if split terms = wanted then terms else go ()
        go ()

    /// About how many distinct problems the held-out or the corpus split holds at a level: the ordered selections of
    /// distinct digits, n = min…max, of which about 1/8 fall in each small split (counted as 1/10, to leave room).
    [<CompiledName("SplitCapacity")>]
    let splitCapacity (level: GymLevel) =
        ([ level.MinTerms .. level.MaxTerms ] |> List.sumBy (fun n -> List.fold (*) 1 [ 10 - n .. 9 ])) / 10

    /// count distinct problems of one split, seeded; ids are "<prefix>-<index>".
    [<CompiledName("Problems")>]
    let problems (seed: uint64) (level: GymLevel) (wanted: GymSplit) (count: int) (prefix: string) =
        let rng = Rng(seed)
        let seen = Collections.Generic.HashSet<string>()
        let capacity = splitCapacity level
        if wanted <> Pretraining && count > capacity then
            invalidArg "count" $"at most about {capacity} distinct problems fit this split at {level.MinTerms}–{level.MaxTerms} terms, asked for {count}"
        [| while seen.Count < count do
               let terms = drawFrom rng level wanted
               if seen.Add(String.Join(" ", terms)) then
                   yield { Id = $"{prefix}-{seen.Count - 1}"; Terms = terms } |]

    /// Slips drawn per step, the way a careless solver slips: on a step whose sum carries into the tens (the units of
    /// the running sum written so far plus the term reach 10), the carry is dropped with probability rate (the sum is
    /// written 10 too small: 37+8=35); a dropped carry is kept (Carry: every later sum is built on it) with
    /// probability carryShare, else caught at once ("Wait, 37+8=45"). One wrong alternative per step, so the habit
    /// survives sampling at a temperature below 1 as a two-way choice rather than melting into many rare ones.
    [<CompiledName("DrawSlips")>]
    let drawSlips (rng: Rng) (terms: int[]) (rate: float) (carryShare: float) =
        check terms
        let mutable acc = terms[0]
        [| for i in 0 .. terms.Length - 2 do
               let d = terms[i + 1]
               let right = acc + d
               if acc % 10 + d >= 10 && rng.Unit() < rate then
                   let mode = if rng.Unit() < carryShare then Carry else Fix
                   yield { Step = i; Delta = -10; Mode = mode }
                   acc <- if mode = Carry then right - 10 else right
               else acc <- right |]

    /// The response budget (new tokens) that fits a solution at the level with its slips corrected in the recovery's
    /// form: 96 at 7 terms (y* is about 58 tokens, the rest room for corrections), scaled with the most terms and
    /// rounded up to a multiple of 32, twice that under Restart (a restart writes the solution again).
    [<CompiledName("ResponseBudget")>]
    let responseBudget (level: GymLevel) (recovery: Recovery) =
        let scaled = int (ceil (96.0 * float level.MaxTerms / 7.0 / 32.0)) * 32
        if recovery = Restart then 2 * scaled else scaled

    /// The share of dropped carries kept under a recovery: under Never every one is (nothing is ever caught),
    /// otherwise carryShare.
    [<CompiledName("CarryShareUnder")>]
    let carryShareUnder (recovery: Recovery) (carryShare: float) = if recovery = Never then 1.0 else carryShare

    /// An attempt y_o to learn refinement from: a solution with slips (caught ones corrected in the recovery's form),
    /// cut after a random line with probability truncateRate (a rollout that ran out of budget).
    [<CompiledName("DrawAttemptUnder")>]
    let drawAttemptUnder (recovery: Recovery) (rng: Rng) (terms: int[]) (rate: float) (carryShare: float) (truncateRate: float) =
        let text = render recovery terms (drawSlips rng terms rate (carryShareUnder recovery carryShare))
        if rng.Unit() < truncateRate then
            let lines = text.Split('\n')
            String.Join("\n", lines[.. rng.Below(lines.Length - 1)])
        else text

    /// An attempt with caught slips corrected by "Wait, " and the right line (`drawAttemptUnder Line`).
    [<CompiledName("DrawAttempt")>]
    let drawAttempt (rng: Rng) (terms: int[]) (rate: float) (carryShare: float) (truncateRate: float) =
        drawAttemptUnder Line rng terms rate carryShare truncateRate
