namespace Trd.Core

open System

/// What the executor measures at one position for the shaping primitives, at the recipe's temperature (float64
/// reference: PositionStatistics.measure; the executor's chunked pass must agree with it).
[<Struct>]
type PositionStatistics =
    { /// log π_θ(y_t).
      StudentLogProb: float
      /// log π_T(y_t).
      TeacherLogProb: float
      /// D(π_θ ‖ π_T) over the full vocabulary: the D_t the divergence gates read.
      ReverseKl: float
      /// H(π_θ) = −Σ_v π_θ(v) log π_θ(v).
      StudentEntropy: float
      /// Σ_{v ∈ top-k of π_θ} π_T(v) for the recipe's teachability k; NaN when the recipe has none.
      Teachability: float }

/// One trajectory of the step: its positions' statistics and its verifier outcome.
type TrajectoryStatistics =
    { Positions: PositionStatistics[]
      /// The verifier's outcome of the trajectory's rollout (SG-OPD's trust signal).
      Correct: bool }

/// What the shaping primitives make of one optimiser step, before any gradient: which trajectories count, every
/// position's weight, advantage and switch, and the token count every micro-batch's loss is divided by.
type StepPlan =
    { /// Per trajectory: false when the filter dropped it.
      Kept: bool[]
      /// w_t per trajectory and position (0 throughout a dropped trajectory).
      Weights: float[][]
      /// A_t per trajectory and position under the policy-gradient form (0 where w_t = 0, and under the exact gradient).
      Advantages: float[][]
      /// Per trajectory and position: the switch's gate failed, so the position takes the other divergence.
      Switched: bool[][]
      /// Σ |y| over the kept trajectories: the step's normaliser.
      Tokens: float
      /// Trajectories the filter dropped.
      Filtered: int
      /// Fraction of the kept positions whose weight is 0.
      MaskedFraction: float
      /// Fraction of the kept positions that took the other divergence.
      SwitchedFraction: float
      /// Mean of w_t over the kept positions.
      WeightMean: float
      /// Population standard deviation of w_t over the kept positions.
      WeightStd: float }

module PositionStatistics =

    /// The statistics of one position from raw logits (float64 reference). target is the trajectory token y_t;
    /// teachabilityK the recipe's k (Shaping.teachabilityK), 0 when it has none.
    [<CompiledName("Measure")>]
    let measure (temperature: float) (teachabilityK: int) (teacherLogits: float[]) (studentLogits: float[]) (target: int) =
        if teacherLogits.Length <> studentLogits.Length then
            invalidArg "studentLogits" $"vocabulary sizes differ: teacher V = {teacherLogits.Length}, student V = {studentLogits.Length}"
        Objective.checkTarget target studentLogits.Length
        let lt = Numerics.temperedLogProbs temperature teacherLogits
        let ls = Numerics.temperedLogProbs temperature studentLogits
        let entropy = ls |> Array.sumBy (fun l -> if Double.IsNegativeInfinity l then 0.0 else -(exp l) * l)
        { StudentLogProb = ls[target]
          TeacherLogProb = lt[target]
          ReverseKl = Divergence.reverseKl lt ls
          StudentEntropy = entropy
          Teachability =
            if teachabilityK > 0 then Support.topKIndices (min teachabilityK ls.Length) ls |> Array.sumBy (fun i -> exp lt[i])
            else nan }

/// The shaping primitives' float64 reference: gates, weights, the trajectory filter, step normalisation and the
/// policy-gradient advantages of one step, from its positions' statistics.
module StepPlan =

    let private mean (xs: float[]) = if xs.Length = 0 then nan else Array.average xs

    let private std (xs: float[]) =
        if xs.Length = 0 then nan
        else
            let m = Array.average xs
            sqrt (xs |> Array.averageBy (fun x -> (x - m) * (x - m)))

    /// The values of the kept trajectories, pooled.
    let private pooled (kept: bool[]) (perTrajectory: 'a[][]) =
        Array.zip perTrajectory kept |> Array.filter snd |> Array.collect fst

    let private trust (p: PositionStatistics) = min (exp (p.TeacherLogProb - p.StudentLogProb)) 1.0

    /// The mean of D over positions [a, b] (inclusive; b clipped to the trajectory).
    let private windowMean (d: float[]) (a: int) (b: int) =
        let b = min b (d.Length - 1)
        if a > b then nan else Array.average d[a..b]

    /// Whether each position of one trajectory passes the gate.
    [<CompiledName("Gate")>]
    let gate (g: Gate) (positions: PositionStatistics[]) : bool[] =
        let d = positions |> Array.map (fun p -> p.ReverseKl)
        let n = positions.Length
        match g with
        | TrustAtLeast tau -> positions |> Array.map (fun p -> trust p >= tau)
        | TeachabilityAtLeast (_, tau) ->
            positions |> Array.map (fun p ->
                if Double.IsNaN p.Teachability then invalidOp "the teachability gate needs the statistics measured with its k" else p.Teachability >= tau)
        | NotIsolatedSpike (w, theta) ->
            Array.init n (fun t -> d[t] <= theta || t = n - 1 || windowMean d (t + 1) (t + w) >= theta)
        | BeforeAgreementTrap (w, theta) ->
            let trap = seq { 0 .. n - w } |> Seq.tryFind (fun i -> windowMean d i (i + w - 1) < theta)
            match trap with
            | Some i -> Array.init n (fun t -> t < i + w)
            | None -> Array.create n true
        | FirstTokens count -> Array.init n (fun t -> t < count)

    /// One trajectory's weights for a weighting that needs no step-level statistic (all but ConfidenceEntropy's mean).
    let rec private local (w: Weighting) (trajectory: TrajectoryStatistics) : float[] =
        let ps = trajectory.Positions
        let n = ps.Length
        match w with
        | Uniform -> Array.create n 1.0
        | Gated g -> gate g ps |> Array.map (fun pass -> if pass then 1.0 else 0.0)
        | Trust -> ps |> Array.map trust
        | SpreadDivergence (window, theta, decay) ->
            let notSpike = gate (NotIsolatedSpike (window, theta)) ps
            let real = Array.init n (fun t -> ps[t].ReverseKl > theta && notSpike[t])
            let spread (s: int) =
                let mutable total = 1.0
                for t in max 0 (s - window) .. s - 1 do
                    if real[t] then total <- total + Math.Pow(decay, float (s - t))
                total
            Array.init n spread
        | SignAgreement lambda ->
            let outcome = if trajectory.Correct then 1.0 else -1.0
            ps |> Array.map (fun p -> 1.0 + lambda * float (sign (p.TeacherLogProb - p.StudentLogProb)) * outcome)
        | ConfidenceEntropy (alpha, beta) ->
            ps |> Array.map (fun p -> exp (alpha * p.TeacherLogProb) * (if beta = 0.0 then 1.0 else Math.Pow(max p.StudentEntropy 0.0, beta)))
        | Product ws -> ws |> Array.map (fun f -> local f trajectory) |> Array.reduce (Array.map2 (*))

    /// Every trajectory's weights over the step: ConfidenceEntropy factors are divided by their mean over the kept
    /// positions, so they reweight without rescaling the loss.
    [<CompiledName("Weights")>]
    let weights (w: Weighting) (step: TrajectoryStatistics[]) (kept: bool[]) : float[][] =
        let rec eval (w: Weighting) =
            match w with
            | ConfidenceEntropy (alpha, beta) ->
                // In log space, α log π_T(y_t) + β log H_t, so any finite α, β stays finite: w = e^(l − m) / mean e^(l − m).
                let logRaw =
                    step |> Array.map (fun t ->
                        t.Positions |> Array.map (fun p ->
                            alpha * p.TeacherLogProb + (if beta = 0.0 then 0.0 else beta * log (max p.StudentEntropy 0.0))))
                let keptLogs = pooled kept logRaw
                let top = if keptLogs.Length = 0 then Double.NegativeInfinity else Array.max keptLogs
                if Double.IsNegativeInfinity top then logRaw |> Array.map (Array.map (fun _ -> 0.0))
                else
                    let m = keptLogs |> Array.averageBy (fun l -> exp (l - top))
                    logRaw |> Array.map (Array.map (fun l -> exp (l - top) / m))
            | Product ws -> ws |> Array.map eval |> Array.reduce (Array.map2 (Array.map2 (*)))
            | w -> step |> Array.map (local w)
        eval w |> Array.mapi (fun i ws -> if kept[i] then ws else Array.zeroCreate ws.Length)

    /// Which trajectories the filter keeps.
    [<CompiledName("Keep")>]
    let keep (filter: TrajectoryFilter) (step: TrajectoryStatistics[]) : bool[] =
        match filter with
        | KeepAll -> Array.create step.Length true
        | DropLowestTeacherLogProb q ->
            let drop = int (floor (q * float step.Length))
            let score (t: TrajectoryStatistics) = t.Positions |> Array.averageBy (fun p -> p.TeacherLogProb)
            let dropped =
                step |> Array.mapi (fun i t -> i, score t)
                |> Array.sortWith (fun (i, a) (j, b) -> let c = compare a b in if c <> 0 then c else compare j i)
                |> Array.truncate drop |> Array.map fst |> set
            Array.init step.Length (fun i -> not (dropped.Contains i))

    /// The policy-gradient reward of one position, before clamping (Reward's definitions).
    [<CompiledName("Reward")>]
    let reward (direction: Direction) (reward: Reward) (p: PositionStatistics) : float =
        let logR = p.TeacherLogProb - p.StudentLogProb
        match reward with
        | LogRatio -> logR
        | FDivergence corrected ->
            let r = exp logR
            let forward () = if corrected then r else -(r * logR)
            let reverse () = if corrected then logR - 1.0 else logR
            match direction with
            | Forward -> forward ()
            | Reverse -> reverse ()
            | Jsd b when b = 0.0 -> forward ()
            | Jsd b when b = 1.0 -> reverse ()
            | Jsd b ->
                let m = b * r + 1.0 - b
                if corrected then log m / b
                else -((b * r * (logR - log m) - (1.0 - b) * log m) / (b * (1.0 - b)))

    /// The advantages A_t of every kept position: reward, clamp, step standardisation, return-to-go.
    [<CompiledName("Advantages")>]
    let advantages (direction: Direction) (pg: PolicyGradient) (normalisation: StepNormalisation) (step: TrajectoryStatistics[]) (kept: bool[]) =
        let clamp x = if pg.RewardClip > 0.0 then max -pg.RewardClip (min pg.RewardClip x) else x
        let rewards = step |> Array.map (fun t -> t.Positions |> Array.map (reward direction pg.Reward >> clamp))
        let rewards =
            match normalisation with
            | Off -> rewards
            | Standardise ->
                let all = pooled kept rewards
                let m, s = mean all, std all
                rewards |> Array.map (Array.map (fun r -> (r - m) / (s + 1e-8)))
        rewards |> Array.mapi (fun i r -> if kept[i] then GradientForm.returnToGo pg.Gamma r else Array.zeroCreate r.Length)

    /// The step's plan under the recipe's shaping primitives (Recipe.IsShaped false: uniform weights, nothing
    /// dropped or switched, no advantages).
    [<CompiledName("Plan")>]
    let plan (recipe: Recipe) (step: TrajectoryStatistics[]) : StepPlan =
        Recipe.validate recipe |> ignore
        if step.Length = 0 then invalidArg "step" "a step needs at least one trajectory"
        step |> Array.iteri (fun i t -> if t.Positions.Length = 0 then invalidArg "step" $"trajectory {i} has no position")
        let kept = keep recipe.Filter step
        let w = weights recipe.Weighting step kept
        let advantages =
            match recipe.Gradient with
            | PolicyGradient pg ->
                // A position that weighs nothing gets A = 0, so no unbounded reward reaches the executor unused.
                advantages recipe.Direction pg recipe.StepNormalisation step kept
                |> Array.mapi (fun i a -> Array.map2 (fun a w -> if w = 0.0 then 0.0 else a) a w[i])
            | ExactGradient -> step |> Array.map (fun t -> Array.zeroCreate t.Positions.Length)
        let switched =
            step |> Array.mapi (fun i t ->
                match recipe.Switch with
                | Outliers (g, _, _) when kept[i] -> gate g t.Positions |> Array.map not
                | _ -> Array.zeroCreate t.Positions.Length)
        let keptWeights = pooled kept w
        let keptSwitched = pooled kept switched
        let fraction (xs: bool[]) = if xs.Length = 0 then nan else float (xs |> Array.filter id |> Array.length) / float xs.Length
        { Kept = kept
          Weights = w
          Advantages = advantages
          Switched = switched
          Tokens = float keptWeights.Length
          Filtered = kept |> Array.filter not |> Array.length
          MaskedFraction = keptWeights |> Array.map (fun x -> x = 0.0) |> fraction
          SwitchedFraction = fraction keptSwitched
          WeightMean = mean keptWeights
          WeightStd = std keptWeights }

/// One trajectory for the shaped objective's float64 reference: logits per position, its tokens and outcome.
type ShapedTrajectory =
    { Teacher: float[][]
      Student: float[][]
      Targets: int[]
      Correct: bool
      /// log π_behaviour(y_t) of the policy that sampled the rollout, for the importance ratio; empty: the current one.
      Behaviour: float[] }

/// The loss of one step and its gradient with respect to every student logit.
type ShapedEvaluation =
    { Plan: StepPlan
      /// Σ over kept positions of w_t ℓ_t, divided by plan.Tokens.
      Loss: float
      /// ∂Loss/∂z_θ per trajectory, position and vocabulary entry.
      Gradient: float[][][] }

/// A shaped recipe evaluated end to end in float64: statistics, plan, each position's term and its gradient. The
/// executor's value and autograd gradient are tested against this.
module ShapedObjective =

    /// The recipe the switch uses where its gate fails: exact, unclipped, the switch's direction and support.
    [<CompiledName("SwitchRecipe")>]
    let switchRecipe (recipe: Recipe) : Recipe =
        match recipe.Switch with
        | Outliers (_, d, s) ->
            Recipe.Create(recipe.Name + " (outliers)", d, support = s, temperature = recipe.Temperature,
                          trajectory = recipe.Trajectory, teacherPrompt = recipe.TeacherPrompt)
        | NoSwitch -> invalidArg "recipe" "the recipe has no switch"

    /// The recipe with its shaping removed: the divergence each position contributes under the exact gradient.
    [<CompiledName("Unshaped")>]
    let unshaped (recipe: Recipe) =
        { recipe with Weighting = Uniform; Switch = NoSwitch; Filter = KeepAll; StepNormalisation = Off; Gradient = ExactGradient }

    /// The statistics of every trajectory under the recipe (PositionStatistics.measure at each position).
    [<CompiledName("Statistics")>]
    let statistics (recipe: Recipe) (step: ShapedTrajectory[]) : TrajectoryStatistics[] =
        let k = Shaping.teachabilityK recipe.Weighting recipe.Switch
        step |> Array.map (fun t ->
            { Positions = Array.init t.Targets.Length (fun i -> PositionStatistics.measure recipe.Temperature k t.Teacher[i] t.Student[i] t.Targets[i])
              Correct = t.Correct })

    /// ℓ_t and ∂ℓ_t/∂z_θ of one position: the other divergence where switched; under the policy-gradient form
    /// −min(ρA, clip(ρ, 1 ± ε)A) with ρ = π_θ(y_t)/π_behaviour(y_t); else the recipe's own contribution.
    let private term (recipe: Recipe) (switched: bool) (advantage: float) (behaviour: float option) (zt: float[]) (zs: float[]) (y: int) =
        let exactTerm (r: Recipe) =
            (Objective.position r zt zs y).Contribution, lazy (Objective.numericalGradient r zt zs y 1e-6)
        if switched then exactTerm (switchRecipe recipe)
        else
            match recipe.Gradient with
            | ExactGradient -> exactTerm (unshaped recipe)
            | PolicyGradient pg ->
                let t = recipe.Temperature
                let ls = Numerics.temperedLogProbs t zs
                let rho = match behaviour with Some b -> exp (ls[y] - b) | None -> 1.0
                let clipped = if pg.RatioClip > 0.0 then max (1.0 - pg.RatioClip) (min (1.0 + pg.RatioClip) rho) else rho
                let unclippedWins = rho * advantage <= clipped * advantage
                let value = -(min (rho * advantage) (clipped * advantage))
                // ∂(−ρA)/∂z = −A ρ (e_y − softmax(z/T)) / T; the clipped branch, when it is the min and ρ lies outside, is constant.
                let live = unclippedWins || clipped = rho
                let gradient =
                    lazy (Array.init zs.Length (fun j ->
                              if not live then 0.0
                              else -advantage * rho * ((if j = y then 1.0 else 0.0) - exp ls[j]) / t))
                value, gradient

    let private run (recipe: Recipe) (step: ShapedTrajectory[]) (withGradient: bool) : ShapedEvaluation =
        let plan = StepPlan.plan recipe (statistics recipe step)
        let mutable loss = 0.0
        let gradient =
            step |> Array.mapi (fun i t ->
                Array.init t.Targets.Length (fun p ->
                    let w = plan.Weights[i][p]
                    if not plan.Kept[i] || w = 0.0 then (if withGradient then Array.zeroCreate t.Student[p].Length else [||])
                    else
                        let behaviour = if t.Behaviour.Length = 0 then None else Some t.Behaviour[p]
                        let switched, advantage = plan.Switched[i][p], plan.Advantages[i][p]
                        let value, g = term recipe switched advantage behaviour t.Teacher[p] t.Student[p] t.Targets[p]
                        loss <- loss + w * value
                        if withGradient then g.Value |> Array.map (fun x -> w * x / plan.Tokens) else [||]))
        { Plan = plan; Loss = loss / plan.Tokens; Gradient = gradient }

    /// The step's loss and gradient: Σ_{kept} w_t ℓ_t / Tokens (plan from the statistics the logits give). The
    /// gradient of an exact term is by finite differences (Objective.numericalGradient): keep V small.
    [<CompiledName("Evaluate")>]
    let evaluate (recipe: Recipe) (step: ShapedTrajectory[]) : ShapedEvaluation = run recipe step true

    /// The step's loss and plan alone (Gradient empty): cheap at any V.
    [<CompiledName("Loss")>]
    let loss (recipe: Recipe) (step: ShapedTrajectory[]) : ShapedEvaluation = run recipe step false
