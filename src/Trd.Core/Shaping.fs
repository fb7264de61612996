namespace Trd.Core

open System

/// A per-position predicate on quantities the executor measures at the position (PositionStatistics) and on the
/// position's place in its trajectory. Gates mask positions (Weighting.Gated) and choose between objectives (Switch).
/// D_t below is the exact full-vocabulary reverse KL D(π_θ ‖ π_T) at the position, at the recipe's temperature.
type Gate =
    /// trust_t = min(π_T(y_t) / π_θ(y_t), 1) ≥ τ on the trajectory token (TrOPD, arXiv 2606.01249).
    | TrustAtLeast of Threshold: float
    /// teachability_t = Σ_{v ∈ top-k of π_θ} π_T(v) ≥ τ: the teacher's mass on the student's k candidates
    /// (TA-OPD, arXiv 2605.26844).
    | TeachabilityAtLeast of TopK: int * Threshold: float
    /// Not an isolated spike: D_t ≤ θ, or the mean of D over the next w positions (those that exist) is ≥ θ. A
    /// high-divergence position whose near future agrees is a surface-form mismatch and fails (TOPD, arXiv 2606.00305).
    /// The last position of a trajectory has no future and passes.
    | NotIsolatedSpike of Window: int * Threshold: float
    /// Before the agreement trap: with i the first start whose window D_i … D_{i+w−1} has mean < θ, the positions
    /// t < i + w pass and the rest fail; every position passes when no window qualifies (KAT, arXiv 2606.09471,
    /// offline form).
    | BeforeAgreementTrap of Window: int * Threshold: float
    /// t < N: only the first N tokens of the trajectory (ESR, early-stopping rollout, arXiv 2605.27028).
    | FirstTokens of Count: int

    override this.ToString() =
        match this with
        | TrustAtLeast t -> $"trust ≥ {t}"
        | TeachabilityAtLeast (k, t) -> $"teachability@{k} ≥ {t}"
        | NotIsolatedSpike (w, t) -> $"not an isolated spike (w={w}, θ={t})"
        | BeforeAgreementTrap (w, t) -> $"before the agreement trap (w={w}, θ={t})"
        | FirstTokens n -> $"first {n} tokens"

/// A per-position weight w_t ≥ 0 multiplying the position's contribution. Uniform (1 everywhere) is today's recipe.
type Weighting =
    | Uniform
    /// 1 where the gate passes, 0 where it fails (a mask).
    | Gated of Gate
    /// trust_t = min(π_T(y_t) / π_θ(y_t), 1): the soft form of TrustAtLeast (TrOPD's clip variant).
    | Trust
    /// 1 + Σ λ^(s−t) over the real divergences t with 0 < s − t ≤ w: a real divergence (D_t > θ and not an
    /// isolated spike) spreads its supervision over the next w positions with decaying weights (TOPD).
    | SpreadDivergence of Window: int * Threshold: float * Decay: float
    /// 1 + λ·sign(log π_T(y_t) − log π_θ(y_t))·o, o = +1 when the trajectory's verifier outcome is correct, −1 when
    /// not: the update grows where the teacher's per-token signal agrees with the outcome and shrinks where it
    /// disagrees (SG-OPD, arXiv 2606.09304; λ ∈ [0, 1]).
    | SignAgreement of Lambda: float
    /// π_T(y_t)^α · H(π_θ)_t^β, divided by its mean over the step's kept positions (so the mean weight is 1):
    /// teacher confidence and student entropy (FiRe-OPD, arXiv 2606.02684).
    | ConfidenceEntropy of Alpha: float * Beta: float
    /// The product of the factors' weights.
    | Product of Weighting[]

    override this.ToString() =
        match this with
        | Uniform -> "uniform"
        | Gated g -> $"gate[{g}]"
        | Trust -> "trust"
        | SpreadDivergence (w, t, d) -> $"spread(w={w}, θ={t}, decay={d})"
        | SignAgreement l -> $"sign-agreement(λ={l})"
        | ConfidenceEntropy (a, b) -> $"confidence^{a}·entropy^{b}"
        | Product ws -> String.Join(" × ", ws |> Array.map string)

/// A per-position choice between two objectives: where the gate passes the recipe's own term, where it fails an exact
/// divergence of another direction over another support (TrOPD's switch variant: outliers take top-K forward KL).
type Switch =
    | NoSwitch
    | Outliers of Gate: Gate * Direction: Direction * Support: Support

    override this.ToString() =
        match this with
        | NoSwitch -> "no switch"
        | Outliers (g, d, s) -> $"where not [{g}]: {d} on {s}"

/// Drops whole trajectories before the step's token count is formed.
type TrajectoryFilter =
    | KeepAll
    /// Drops the ⌊q·n⌋ of the step's n trajectories with the lowest length-normalised teacher log-probability
    /// (1/|y|) Σ_t log π_T(y_t) (ties: the later trajectory goes first). FiRe-OPD's q = 0.2.
    | DropLowestTeacherLogProb of Fraction: float

    override this.ToString() =
        match this with
        | KeepAll -> "keep all"
        | DropLowestTeacherLogProb q -> $"drop the lowest {q} by teacher log-prob"

/// Standardisation of the per-position rewards over every kept position of the optimiser step (all its micro-batches):
/// (r − μ) / (σ + 1e-8), σ the population standard deviation (GNDPO, arXiv 2606.09091).
type StepNormalisation =
    | Off
    | Standardise

/// The per-token reward of the policy-gradient form, with r_t = π_T(y_t) / π_θ(y_t) on the trajectory token.
type Reward =
    /// log π_T(y_t) − log π_θ(y_t) = −δ_t: the per-token reverse KL k1, negated (Eq. 3; tinker, GNDPO).
    | LogRatio
    /// For the recipe's direction as an f-divergence D_f(π_T ‖ π_θ) = E_{y∼π_θ}[g(r)]: the reward −g(r) treats the
    /// per-token value as a constant (the stop-gradient surrogate, biased unless f is the reverse KL); Corrected adds
    /// the pathwise term, −(g(r) − r g'(r)), whose expectation over y_t ∼ π_θ is exactly −∇D_f's score-function
    /// coefficient (OPD+, arXiv 2606.01039). Forward KL: g = r log r, corrected −(g − r g') = r. Reverse KL:
    /// g = −log r, corrected log r − 1. JSD(β) (scaled as Direction.Jsd): corrected log(β r + 1 − β) / β.
    | FDivergence of Corrected: bool

    override this.ToString() =
        match this with
        | LogRatio -> "log-ratio"
        | FDivergence c -> if c then "f-divergence, corrected" else "f-divergence, surrogate"

/// The policy-gradient form: loss −Σ_t w_t · min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t), A_t held constant
/// (stop-gradient), ρ_t = π_θ(y_t) / π_behaviour(y_t) the importance ratio to the policy that produced the rollout
/// (1 in value when it is the current one, so the gradient is −w_t A_t ∇log π_θ(y_t)).
/// A_t: the reward, clamped to ±RewardClip (0: no clamp), step-standardised (StepNormalisation), then the
/// discounted return-to-go Σ_{t'≥t} γ^(t'−t) r_t' (γ = 0: the reward itself; App. A, GradientForm.returnToGo).
type PolicyGradient =
    { Reward: Reward
      /// |r_t| ≤ c before anything else; 0: no clamp.
      RewardClip: float
      /// γ ∈ [0, 1].
      Gamma: float
      /// PPO's ε on the importance ratio; 0: no clipping.
      RatioClip: float }

    override this.ToString() =
        $"PG({this.Reward}, clamp {this.RewardClip}, γ={this.Gamma}, ε={this.RatioClip})"

/// How the gradient of a position's term is formed.
type GradientEstimate =
    /// The gradient of the exact divergence (today's executor).
    | ExactGradient
    /// A stop-gradient advantage times ∇log π_θ(y_t).
    | PolicyGradient of PolicyGradient

    override this.ToString() =
        match this with
        | ExactGradient -> "exact gradient"
        | PolicyGradient p -> string p

module Shaping =

    let private finite (x: float) = not (Double.IsNaN x || Double.IsInfinity x)

    let rec private gates (w: Weighting) : Gate list =
        match w with
        | Gated g -> [ g ]
        | Product ws -> ws |> List.ofArray |> List.collect gates
        | _ -> []

    let rec private leaves (w: Weighting) : Weighting list =
        match w with
        | Product ws -> ws |> List.ofArray |> List.collect leaves
        | w -> [ w ]

    let private gateList (weighting: Weighting) (switch: Switch) =
        gates weighting @ (match switch with Outliers (g, _, _) -> [ g ] | NoSwitch -> [])

    /// The gates a weighting and a switch read.
    [<CompiledName("Gates")>]
    let allGates (weighting: Weighting) (switch: Switch) : Gate[] = gateList weighting switch |> Array.ofList

    /// The k of the teachability statistic a weighting and a switch need (at most one k per recipe); 0 when none does.
    [<CompiledName("TeachabilityK")>]
    let teachabilityK (weighting: Weighting) (switch: Switch) : int =
        gateList weighting switch |> List.tryPick (function TeachabilityAtLeast (k, _) -> Some k | _ -> None) |> Option.defaultValue 0

    let private gateProblems (g: Gate) : string list =
        [ match g with
          | TrustAtLeast t when not (t >= 0.0 && t <= 1.0) -> yield $"the trust threshold τ must lie in [0, 1], got {t}"
          | TeachabilityAtLeast (k, _) when k < 1 -> yield $"teachability needs k ≥ 1, got k = {k}"
          | TeachabilityAtLeast (_, t) when not (t >= 0.0 && t <= 1.0) -> yield $"the teachability threshold τ must lie in [0, 1], got {t}"
          | NotIsolatedSpike (w, t)
          | BeforeAgreementTrap (w, t) ->
              if w < 1 then yield $"the window w must be ≥ 1, got {w}"
              if not (finite t && t >= 0.0) then yield $"the divergence threshold θ must be a finite number ≥ 0, got {t}"
          | FirstTokens n when n < 1 -> yield $"the first-N gate needs N ≥ 1, got {n}"
          | _ -> () ]

    /// Every reason the shaping primitives cannot be evaluated (empty when valid).
    [<CompiledName("Problems")>]
    let problems (weighting: Weighting) (switch: Switch) (filter: TrajectoryFilter) (normalisation: StepNormalisation)
                 (gradient: GradientEstimate) : string[] =
        Array.ofList [
          for w in leaves weighting do
              match w with
              | Gated g -> yield! gateProblems g
              | SpreadDivergence (w, t, d) ->
                  if w < 1 then yield $"the spreading window w must be ≥ 1, got {w}"
                  if not (finite t && t >= 0.0) then yield $"the divergence threshold θ must be a finite number ≥ 0, got {t}"
                  if not (d >= 0.0 && d <= 1.0) then yield $"the spreading decay must lie in [0, 1], got {d}"
              | SignAgreement l when not (l >= 0.0 && l <= 1.0) -> yield $"the sign gate's λ must lie in [0, 1], got {l}"
              | ConfidenceEntropy (a, b) when not (finite a && finite b && a >= 0.0 && b >= 0.0) ->
                  yield $"the confidence and entropy exponents must be finite numbers ≥ 0, got α = {a}, β = {b}"
              | Product [||] -> yield "a product of weightings needs at least one factor"
              | _ -> ()
          match switch with
          | Outliers (g, d, s) ->
              yield! gateProblems g
              match d with
              | Jsd b when not (b >= 0.0 && b <= 1.0) -> yield $"the switch's JSD β must lie in [0, 1], got {b}"
              | _ -> ()
              match s with
              | TeacherTopK k | TeacherTopKWithTail k when k < 1 -> yield $"the switch's top-K needs K ≥ 1, got K = {k}"
              | _ -> ()
          | NoSwitch -> ()
          match (gateList weighting switch |> List.choose (function TeachabilityAtLeast (k, _) -> Some k | _ -> None) |> List.distinct) with
          | _ :: _ :: _ as ks -> yield $"""teachability gates must share one k, got k = {String.Join(", ", ks)}"""
          | _ -> ()
          match filter with
          | DropLowestTeacherLogProb q when not (q >= 0.0 && q < 1.0) -> yield $"the filtered fraction q must lie in [0, 1), got {q}"
          | _ -> ()
          match normalisation, gradient with
          | Standardise, ExactGradient -> yield "step normalisation standardises the policy-gradient rewards: it needs the policy-gradient form"
          | _ -> ()
          match gradient with
          | PolicyGradient p ->
              if not (finite p.RewardClip && p.RewardClip >= 0.0) then yield $"the reward clamp must be a finite number ≥ 0 (0: none), got {p.RewardClip}"
              if not (p.Gamma >= 0.0 && p.Gamma <= 1.0) then yield $"the discount γ must lie in [0, 1], got {p.Gamma}"
              if not (p.RatioClip >= 0.0 && p.RatioClip < 1.0) then yield $"the ratio clip ε must lie in [0, 1) (0: none), got {p.RatioClip}"
          | ExactGradient -> () ]
