namespace Trd.Core

open System
open System.Collections.Generic

/// The values a method parameter may take.
type ParameterDomain =
    /// A whole number ≥ 1.
    | Count
    /// [0, 1].
    | UnitInterval
    /// [0, 1).
    | UnitIntervalOpen
    /// A finite number ≥ 0.
    | NonNegative
    /// 0 or 1.
    | Flag

    override this.ToString() =
        match this with
        | Count -> "a whole number ≥ 1"
        | UnitInterval -> "a number in [0, 1]"
        | UnitIntervalOpen -> "a number in [0, 1)"
        | NonNegative -> "a finite number ≥ 0"
        | Flag -> "0 or 1 (false or true)"

    /// Whether x lies in the domain.
    member this.Contains(x: float) =
        not (Double.IsNaN x || Double.IsInfinity x)
        && match this with
           | Count -> x >= 1.0 && x = Math.Round x && x <= 1e9
           | UnitInterval -> x >= 0.0 && x <= 1.0
           | UnitIntervalOpen -> x >= 0.0 && x < 1.0
           | NonNegative -> x >= 0.0
           | Flag -> x = 0.0 || x = 1.0

/// One numeric parameter of a shaped method: its config key, its default, its domain and what it is.
type MethodParameter =
    { Key: string
      Default: float
      Domain: ParameterDomain
      Doc: string }

/// A 2026 on-policy distillation method as a value of the algebra: a base recipe with shaping primitives
/// (Shaping.fs). Build makes the recipe from parameters (missing ones take their defaults).
[<NoEquality; NoComparison>]
type ShapedMethod =
    { /// The config word (`"objective": {"method": "topd"}`).
      ConfigName: string
      /// The name in tables.
      Label: string
      /// Where it is described.
      Source: string
      /// Its definition in Trd's primitives, one line (docs/methods.md's table).
      Definition: string
      /// Whether the parameter defaults come from the paper (true) or are Trd's choice where the public description
      /// gives none (false; the method's doc comment says which).
      PaperDefaults: bool
      Parameters: MethodParameter[]
      Build: Func<IReadOnlyDictionary<string, float>, Recipe> }

    /// The method's recipe with the given parameters (the rest at their defaults); ArgumentException names a
    /// parameter the method does not have or a value out of range (C#: <c>ShapedMethods.Topd.Create(parameters)</c>).
    member m.Create(parameters: IReadOnlyDictionary<string, float>) = m.Build.Invoke parameters

/// A recipe recognised as a catalogued method with its parameters (ShapedMethods.tryRecognise).
[<NoEquality; NoComparison>]
type RecognisedMethod =
    { Method: ShapedMethod
      Parameters: IReadOnlyDictionary<string, float> }

/// The methods of issue 19 as values. Each one's base is standard OPD as these papers use it — the student's rollout
/// y_o, the vanilla teacher prompt — with reverse KL over the full vocabulary (exact) unless the method changes the
/// gradient; the config's other objective keys (trajectory, teacher_prompt, temperature, direction …) apply after the
/// method, so `{"method": "topd", "trajectory": "y_r", "teacher_prompt": "refine"}` is TOPD along TRD's y_r.
///
/// Where a paper's exact form is not public, the definition here is the one issue 19 gives, and parameters without a
/// published default carry Trd's choice (PaperDefaults = false); docs/methods.md lists them.
module ShapedMethods =

    let private p key value domain doc = { Key = key; Default = value; Domain = domain; Doc = doc }

    let private get (ps: IReadOnlyDictionary<string, float>) (key: string) (fallback: float) =
        match ps.TryGetValue key with
        | true, v -> v
        | _ -> fallback

    /// A Count parameter as an int (Build has checked its domain).
    let private whole (x: float) = int x

    let private opd name = Recipe.Create(name, Reverse)

    let private pg reward rewardClip gamma ratioClip =
        PolicyGradient { Reward = reward; RewardClip = rewardClip; Gamma = gamma; RatioClip = ratioClip }

    /// The policy-gradient form with the reward and the method's reward_clip, gamma and ratio_clip.
    let private pgOf reward (v: string -> float) = pg reward (v "reward_clip") (v "gamma") (v "ratio_clip")

    let private pgParameters (rewardClip: float) (gamma: float) (ratioClip: float) =
        [| p "reward_clip" rewardClip NonNegative "|r_t| clamp before anything else (0: none)"
           p "gamma" gamma UnitInterval "discount γ of the return-to-go (0: the per-token reward)"
           p "ratio_clip" ratioClip UnitIntervalOpen "PPO's ε on the importance ratio (0: none)" |]

    let private method configName label source definition paperDefaults parameters (build: (string -> float) -> Recipe) =
        let parameters : MethodParameter[] = parameters
        { ConfigName = configName; Label = label; Source = source; Definition = definition; PaperDefaults = paperDefaults
          Parameters = parameters
          Build = Func<_, _>(fun ps ->
              for KeyValue (k, x) in ps do
                  match parameters |> Array.tryFind (fun q -> q.Key = k) with
                  | None ->
                      let known = if parameters.Length = 0 then "none" else String.Join(", ", parameters |> Array.map (fun q -> q.Key))
                      invalidArg k $"'{k}' is not a parameter of {configName} (its parameters: {known})"
                  | Some q when not (q.Domain.Contains x) -> invalidArg k $"{configName}'s {k} must be {q.Domain}, got {x}"
                  | Some _ -> ()
              let value key = get ps key (parameters |> Array.find (fun q -> q.Key = key)).Default
              (build value).Validate()) }

    /// TOPD (arXiv 2606.00305): a high-divergence position counts only where D stays high over the next w positions,
    /// and each real divergence spreads its supervision over the next w positions with weights decay^(s−t).
    /// The paper's w, θ and decay are not public: w = 4, θ = 0.5 nats, decay = 0.5 are Trd's.
    [<CompiledName("Topd")>]
    let topd =
        method "topd" "TOPD" "arXiv 2606.00305"
            "reverse KL × gate[not an isolated spike(w, θ)] × spread(w, θ, decay)" false
            [| p "window" 4.0 Count "w, positions of near future read"; p "threshold" 0.5 NonNegative "θ, reverse KL (nats) above which a position diverges"
               p "decay" 0.5 UnitInterval "weight decay^(s−t) spread to the s − t ≤ w positions after a real divergence" |]
            (fun v ->
                let w, th = whole (v "window"), v "threshold"
                (opd "TOPD").WithWeighting(Product [| Gated(NotIsolatedSpike(w, th)); SpreadDivergence(w, th, v "decay") |]))

    /// TOPD's suppression alone (the paper's ablation): isolated spikes masked, no spreading.
    [<CompiledName("TopdSuppress")>]
    let topdSuppress =
        method "topd-suppress" "TOPD (suppression only)" "arXiv 2606.00305"
            "reverse KL × gate[not an isolated spike(w, θ)]" false
            [| p "window" 4.0 Count "w"; p "threshold" 0.5 NonNegative "θ (nats)" |]
            (fun v -> (opd "TOPD (suppression only)").WithWeighting(Gated(NotIsolatedSpike(whole (v "window"), v "threshold"))))

    /// SG-OPD (arXiv 2606.09304): w_t = 1 + λ·sign(log π_T(y_t) − log π_θ(y_t))·o with o = ±1 the rollout's verifier
    /// outcome. λ = 0.5 is Trd's.
    [<CompiledName("SgOpd")>]
    let sgOpd =
        method "sg-opd" "SG-OPD" "arXiv 2606.09304" "reverse KL × (1 + λ·sign(log π_T − log π_θ)·outcome)" false
            [| p "lambda" 0.5 UnitInterval "λ ∈ [0, 1], the gate strength" |]
            (fun v -> (opd "SG-OPD").WithWeighting(SignAgreement(v "lambda")))

    /// TA-OPD (arXiv 2605.26844): only positions whose teachability (the teacher's mass on the student's top-k) is ≥ τ
    /// count. k = 8 and τ = 0.5 are Trd's.
    [<CompiledName("TaOpd")>]
    let taOpd =
        method "ta-opd" "TA-OPD" "arXiv 2605.26844" "reverse KL × gate[Σ_{top-k π_θ} π_T ≥ τ]" false
            [| p "teachability_k" 8.0 Count "k, the student's candidates"; p "threshold" 0.5 UnitInterval "τ ∈ [0, 1]" |]
            (fun v -> (opd "TA-OPD").WithWeighting(Gated(TeachabilityAtLeast(whole (v "teachability_k"), v "threshold"))))

    let private tropd (variant: string) (label: string) (definition: string) (shape: float -> float -> Recipe -> Recipe) extra =
        method $"tropd-{variant}" label "arXiv 2606.01249" definition false
            (Array.append [| p "threshold" 0.2 UnitInterval "τ: trusted where min(π_T(y_t)/π_θ(y_t), 1) ≥ τ" |] (Array.append extra (pgParameters 0.0 0.0 0.0)))
            (fun v ->
                let k = if extra.Length > 0 then v "switch_top_k" else 0.0
                (opd label).WithGradient(pgOf LogRatio v) |> shape (v "threshold") k)

    /// TrOPD, mask (arXiv 2606.01249): the sampled reverse-KL policy gradient on trusted positions
    /// (min(π_T(y_t)/π_θ(y_t), 1) ≥ τ), outliers masked. τ = 0.2 is Trd's.
    [<CompiledName("TropdMask")>]
    let tropdMask =
        tropd "mask" "TrOPD (mask)" "PG[log π_T − log π_θ] × gate[trust ≥ τ]"
            (fun tau _ r -> r.WithWeighting(Gated(TrustAtLeast tau))) [||]

    /// TrOPD, clip: every position's policy-gradient term weighted by its trust min(π_T/π_θ, 1), so outliers count in
    /// proportion to the clipped ratio (τ unused by the weight; kept for the shared parameter set).
    [<CompiledName("TropdClip")>]
    let tropdClip =
        method "tropd-clip" "TrOPD (clip)" "arXiv 2606.01249" "PG[log π_T − log π_θ] × min(π_T(y_t)/π_θ(y_t), 1)" false
            (pgParameters 0.0 0.0 0.0)
            (fun v -> (opd "TrOPD (clip)").WithGradient(pgOf LogRatio v).WithWeighting(Trust))

    /// TrOPD, switch: trusted positions take the sampled reverse-KL policy gradient, outliers the teacher's top-K
    /// forward KL (exact, renormalised). τ = 0.2 is Trd's; K = 32 is the paper's top-K of Table 13.
    [<CompiledName("TropdSwitch")>]
    let tropdSwitch =
        tropd "switch" "TrOPD (switch)" "PG[log π_T − log π_θ] where trust ≥ τ, else forward KL on the teacher's top-K"
            (fun tau k r -> r.WithSwitch(Outliers(TrustAtLeast tau, Forward, TeacherTopK(whole k))))
            [| p "switch_top_k" (float Recipes.PaperTopK) Count "K of the outliers' top-K forward KL" |]

    /// FiRe-OPD (arXiv 2606.02684): the step's bottom q of trajectories by length-normalised teacher log-prob dropped,
    /// then weights π_T(y_t)^α · H(π_θ)^β normalised to mean 1. q = 0.2 is the paper's; α = β = 1 are Trd's.
    [<CompiledName("FireOpd")>]
    let fireOpd =
        method "fire-opd" "FiRe-OPD" "arXiv 2606.02684" "drop lowest q by mean log π_T; reverse KL × π_T(y_t)^α · H(π_θ)^β / mean" false
            [| p "filter_fraction" 0.2 UnitIntervalOpen "q, the fraction of the step's trajectories dropped"
               p "alpha" 1.0 NonNegative "α, the teacher-confidence exponent"; p "beta" 1.0 NonNegative "β, the student-entropy exponent" |]
            (fun v -> (opd "FiRe-OPD").WithFilter(DropLowestTeacherLogProb(v "filter_fraction")).WithWeighting(ConfidenceEntropy(v "alpha", v "beta")))

    /// GNDPO (arXiv 2606.09091): r_t = clamp(log π_T(y_t) − log π_θ(y_t), ±5), standardised over every token of the
    /// step, as the policy-gradient advantage. Its defaults are the description's.
    [<CompiledName("Gndpo")>]
    let gndpo =
        method "gndpo" "GNDPO" "arXiv 2606.09091" "PG[standardise_step(clamp(log π_T − log π_θ, ±5))]" true
            (pgParameters 5.0 0.0 0.0)
            (fun v -> (opd "GNDPO").WithGradient(pgOf LogRatio v).WithStepNormalisation(Standardise))

    /// KAT, offline form (arXiv 2606.09471): positions after the first window of w tokens whose mean reverse KL stays
    /// below θ are dropped. w = 8 and θ = 0.05 nats are Trd's.
    [<CompiledName("Kat")>]
    let kat =
        method "kat" "KAT" "arXiv 2606.09471" "reverse KL × gate[t < end of the first w-window with mean D < θ]" false
            [| p "window" 8.0 Count "w"; p "threshold" 0.05 NonNegative "θ (nats)" |]
            (fun v -> (opd "KAT").WithWeighting(Gated(BeforeAgreementTrap(whole (v "window"), v "threshold"))))

    /// ESR (arXiv 2605.27028): only the first N response tokens count. N = 16 is Trd's (the gym's trajectories run to
    /// a few dozen tokens).
    [<CompiledName("Esr")>]
    let esr =
        method "esr" "ESR" "arXiv 2605.27028" "reverse KL × gate[t < N]" false
            [| p "first_tokens" 16.0 Count "N" |]
            (fun v -> (opd "ESR").WithWeighting(Gated(FirstTokens(whole (v "first_tokens")))))

    /// OPD+ (arXiv 2606.01039): forward KL (the recipe's direction; JSD via the direction keys) through the corrected
    /// policy-gradient form −(g(r) − r g'(r)) on the student's sampled tokens; corrected = 0 gives the biased
    /// stop-gradient surrogate it corrects.
    [<CompiledName("OpdPlus")>]
    let opdPlus =
        method "opd-plus" "OPD+" "arXiv 2606.01039" "PG[−(g(r) − r g'(r))] for f = forward KL, r = π_T(y_t)/π_θ(y_t)" true
            (Array.append [| p "corrected" 1.0 Flag "1: the corrected form; 0: the biased stop-gradient surrogate" |] (pgParameters 0.0 0.0 0.0))
            (fun v ->
                let corrected = match v "corrected" with 1.0 -> true | 0.0 -> false | x -> invalidArg "corrected" $"corrected must be 0 or 1, got {x}"
                Recipe.Create((if corrected then "OPD+" else "OPD+ (surrogate)"), Forward)
                    .WithGradient(pgOf (FDivergence corrected) v))

    /// tinker-style OPD (Thinking Machines, "On-policy distillation", 2025; tinker-cookbook): the per-token reverse KL
    /// k1, negated, as the advantage of an importance-sampled policy gradient; discount γ = 0 by default, as there.
    [<CompiledName("Tinker")>]
    let tinker =
        method "tinker" "tinker OPD" "Thinking Machines 2025 (tinker-cookbook)" "PG[Σ γ^(t'−t) (log π_T − log π_θ)] × ρ_t" true
            (pgParameters 0.0 0.0 0.0)
            (fun v -> (opd "tinker OPD").WithGradient(pgOf LogRatio v))

    /// Every shaped method, in issue 19's order.
    [<CompiledName("All")>]
    let all = [| topd; topdSuppress; sgOpd; taOpd; tropdMask; tropdClip; tropdSwitch; fireOpd; gndpo; kat; esr; opdPlus; tinker |]

    /// The method a config word names (case ignored), or null.
    [<CompiledName("TryFind")>]
    let tryFind (name: string) : ShapedMethod =
        let key = if obj.ReferenceEquals(name, null) then "" else name.Trim().ToLowerInvariant()
        all |> Array.tryFind (fun m -> m.ConfigName = key) |> Option.defaultValue Unchecked.defaultof<ShapedMethod>

    /// The method with its defaults.
    [<CompiledName("Default")>]
    let defaultOf (m: ShapedMethod) = m.Create(Dictionary<string, float>())

    /// Every numeric parameter the recipe's shaping holds, by config key (the inverse of Build's parameters).
    let private parametersOf (r: Recipe) : (string * float) list =
        let rec weighting w =
            match w with
            | Gated (NotIsolatedSpike (w, t)) | Gated (BeforeAgreementTrap (w, t)) -> [ "window", float w; "threshold", t ]
            | Gated (TeachabilityAtLeast (k, t)) -> [ "teachability_k", float k; "threshold", t ]
            | Gated (TrustAtLeast t) -> [ "threshold", t ]
            | Gated (FirstTokens n) -> [ "first_tokens", float n ]
            | SpreadDivergence (w, t, d) -> [ "window", float w; "threshold", t; "decay", d ]
            | SignAgreement l -> [ "lambda", l ]
            | ConfidenceEntropy (a, b) -> [ "alpha", a; "beta", b ]
            | Product ws -> ws |> List.ofArray |> List.collect weighting
            | Uniform | Trust -> []
        [ yield! weighting r.Weighting
          match r.Switch with
          | Outliers (TrustAtLeast t, _, TeacherTopK k) -> yield! [ "threshold", t; "switch_top_k", float k ]
          | _ -> ()
          match r.Filter with
          | DropLowestTeacherLogProb q -> yield "filter_fraction", q
          | KeepAll -> ()
          match r.Gradient with
          | PolicyGradient g ->
              yield! [ "reward_clip", g.RewardClip; "gamma", g.Gamma; "ratio_clip", g.RatioClip ]
              match g.Reward with
              | FDivergence c -> yield "corrected", (if c then 1.0 else 0.0)
              | LogRatio -> ()
          | ExactGradient -> () ]
        |> List.distinctBy fst

    let private sameShaping (a: Recipe) (b: Recipe) =
        a.Weighting = b.Weighting && a.Switch = b.Switch && a.Filter = b.Filter && a.StepNormalisation = b.StepNormalisation && a.Gradient = b.Gradient

    /// The method and parameters whose Build gives the recipe's shaping (its other fields may differ), or null —
    /// the recipe's shaping is then a composition of its own, not a catalogued method.
    [<CompiledName("TryRecognise")>]
    let tryRecognise (r: Recipe) : RecognisedMethod =
        if not r.IsShaped then Unchecked.defaultof<RecognisedMethod>
        else
            let found = parametersOf r
            all |> Array.tryPick (fun m ->
                let ps = Dictionary<string, float>()
                for key, value in found do
                    if m.Parameters |> Array.exists (fun q -> q.Key = key) then ps[key] <- value
                try
                    let built = m.Create ps
                    if sameShaping built r then Some { Method = m; Parameters = ps } else None
                with :? ArgumentException -> None)
            |> Option.defaultValue Unchecked.defaultof<RecognisedMethod>
