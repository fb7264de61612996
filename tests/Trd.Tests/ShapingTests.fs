/// Issue 19's primitives (Shaping.fs, StepPlan.fs) and the named methods (ShapedMethods.fs) on hand-computed cases.
module Trd.Tests.ShapingTests

open System
open System.Collections.Generic
open Expecto
open Trd.Core

/// A position's statistics from the two token log-probabilities and D_t (entropy 1, teachability unmeasured).
let private pos (ls: float) (lt: float) (d: float) =
    { StudentLogProb = ls; TeacherLogProb = lt; ReverseKl = d; StudentEntropy = 1.0; Teachability = nan }

let private ofD (ds: float list) = ds |> List.map (pos -1.0 -1.0) |> Array.ofList

let private traj correct (ps: PositionStatistics[]) = { Positions = ps; Correct = correct }

let private close (a: float[]) (b: float[]) what =
    Expect.equal a.Length b.Length $"{what}: length"
    Array.iteri2 (fun i x y -> Expect.floatClose Accuracy.high x y $"{what}[{i}]") a b

let private random (seed: int) n = let r = Random seed in Array.init n (fun _ -> 3.0 * r.NextDouble() - 1.5)

/// A small step: trajectories of random logits over V entries, targets drawn from the student's top entries.
let private randomStep (seed: int) (v: int) (lengths: int list) : ShapedTrajectory[] =
    let r = Random seed
    lengths
    |> List.mapi (fun i n ->
        { Teacher = Array.init n (fun j -> random (seed * 1000 + i * 100 + j) v)
          Student = Array.init n (fun j -> random (seed * 7919 + i * 100 + j) v)
          Targets = Array.init n (fun _ -> r.Next v)
          Correct = i % 2 = 0
          Behaviour = [||] })
    |> Array.ofList

let private dict (pairs: (string * float) list) =
    let d = Dictionary<string, float>()
    for k, v in pairs do d[k] <- v
    d :> IReadOnlyDictionary<string, float>

[<Tests>]
let tests =
    testList "Shaping" [
        testCase "the paper's recipes are unshaped, and a shaped evaluation of them is today's loss exactly" <| fun () ->
            for r in Recipes.all Opd do
                Expect.isFalse r.IsShaped $"{r.Name} has no shaping"
            let step = randomStep 3 7 [ 3; 5 ]
            for r in [ Recipes.forwardKl; Recipes.reverseKl; Recipes.forwardKlClip Opd; Recipes.reverseKlTopK.WithSupport(TeacherTopK 3) ] do
                let shaped = ShapedObjective.evaluate r step
                let teacher = step |> Array.collect (fun t -> t.Teacher)
                let student = step |> Array.collect (fun t -> t.Student)
                let targets = step |> Array.collect (fun t -> t.Targets)
                let today = Objective.evaluate r teacher student (Array.create teacher.Length 1.0) targets 0.0
                Expect.floatClose Accuracy.veryHigh shaped.Loss today.Loss $"{r.Name}: the shaped reference with uniform weights is Objective.evaluate"
                Expect.equal shaped.Plan.Tokens 8.0 "every position counts"
                Expect.equal shaped.Plan.WeightMean 1.0 "w = 1"

        testCase "the isolated-spike gate and TOPD's spreading, by hand" <| fun () ->
            let ps = ofD [ 0.1; 2.0; 0.1; 0.2; 3.0; 1.5; 1.2 ]
            // t = 1: D = 2 > 1, the next two average 0.15 < 1: an isolated spike. t = 4: next two average 1.35: real.
            Expect.equal (StepPlan.gate (NotIsolatedSpike(2, 1.0)) ps) [| true; false; true; true; true; true; true |] "spikes"
            // Real divergences: t = 4, 5, 6 (6 is last: it passes, and spreads to nothing).
            let w = StepPlan.weights (SpreadDivergence(2, 1.0, 0.5)) [| traj true ps |] [| true |]
            close w[0] [| 1.0; 1.0; 1.0; 1.0; 1.0; 1.5; 1.75 |] "1 + Σ 0.5^(s−t)"
            let topd = ShapedMethods.topd.Create(dict [ "window", 2.0; "threshold", 1.0; "decay", 0.5 ])
            let plan = StepPlan.plan topd [| traj true ps |]
            close plan.Weights[0] [| 1.0; 0.0; 1.0; 1.0; 1.0; 1.5; 1.75 |] "TOPD: the spike masked, the real divergence spread"
            Expect.floatClose Accuracy.high plan.MaskedFraction (1.0 / 7.0) "one position of seven masked"

        testCase "KAT's agreement trap, ESR's first N, trust and teachability, by hand" <| fun () ->
            let ps = ofD [ 1.0; 0.2; 0.3; 0.9; 0.1 ]
            // Windows of 2: [1.0, 0.2] mean 0.6; [0.2, 0.3] mean 0.25 < 0.5 → the trap starts at 1; t < 3 counts.
            Expect.equal (StepPlan.gate (BeforeAgreementTrap(2, 0.5)) ps) [| true; true; true; false; false |] "KAT"
            Expect.equal (StepPlan.gate (BeforeAgreementTrap(2, 0.1)) ps) (Array.create 5 true) "no window below θ: all count"
            Expect.equal (StepPlan.gate (BeforeAgreementTrap(9, 10.0)) ps) (Array.create 5 true) "shorter than a window: all count"
            Expect.equal (StepPlan.gate (FirstTokens 2) ps) [| true; true; false; false; false |] "ESR"
            let trust = [| pos (log 0.5) (log 0.2) 0.0; pos (log 0.2) (log 0.4) 0.0 |]   // π_T/π_θ = 0.4 and 2
            Expect.equal (StepPlan.gate (TrustAtLeast 0.5) trust) [| false; true |] "trust min(π_T/π_θ, 1) ≥ 0.5"
            let soft = StepPlan.weights Trust [| traj true trust |] [| true |]
            close soft[0] [| 0.4; 1.0 |] "soft trust"
            // Student probabilities (0.4, 0.3, 0.2, 0.1): its top-2 is {0, 1}; the teacher's mass there 0.1 + 0.2.
            let s = PositionStatistics.measure 1.0 2 (Array.map log [| 0.1; 0.2; 0.3; 0.4 |]) (Array.map log [| 0.4; 0.3; 0.2; 0.1 |]) 2
            Expect.floatClose Accuracy.high s.Teachability 0.3 "teachability@2"
            Expect.floatClose Accuracy.high s.StudentLogProb (log 0.2) "log π_θ(y)"
            Expect.floatClose Accuracy.high s.TeacherLogProb (log 0.3) "log π_T(y)"
            Expect.floatClose Accuracy.high s.StudentEntropy (-([| 0.4; 0.3; 0.2; 0.1 |] |> Array.sumBy (fun p -> p * log p))) "H(π_θ)"
            Expect.floatClose Accuracy.high s.ReverseKl (Divergence.reverseKl (Array.map log [| 0.1; 0.2; 0.3; 0.4 |]) (Array.map log [| 0.4; 0.3; 0.2; 0.1 |])) "D_t"

        testCase "SG-OPD's sign gate and FiRe's confidence × entropy, by hand" <| fun () ->
            let up, down = pos -2.0 -1.0 0.0, pos -1.0 -2.0 0.0        // teacher above / below the student on y_t
            let w = StepPlan.weights (SignAgreement 0.5) [| traj true [| up; down |]; traj false [| up; down |] |] [| true; true |]
            close w[0] [| 1.5; 0.5 |] "correct rollout: agreement ×1.5, disagreement ×0.5"
            close w[1] [| 0.5; 1.5 |] "incorrect rollout: the outcome's direction flips"
            let fire (lt: float) (h: float) = { pos -1.0 (log lt) 0.0 with StudentEntropy = h }
            let w = StepPlan.weights (ConfidenceEntropy(1.0, 1.0)) [| traj true [| fire 0.5 1.0; fire 0.25 4.0 |] |] [| true |]
            close w[0] [| 2.0 / 3.0; 4.0 / 3.0 |] "0.5 and 1.0, divided by their mean 0.75"
            // Extreme exponents stay finite (computed in log space): the largest raw weight dominates the mean.
            let w = StepPlan.weights (ConfidenceEntropy(1e308, 1e308)) [| traj true [| fire 0.5 1.0; fire 0.25 4.0; fire 0.9 0.0 |] |] [| true |]
            Expect.isTrue (w[0] |> Array.forall Double.IsFinite) $"finite weights for α = β = 1e308: %A{w[0]}"
            Expect.floatClose Accuracy.high (Array.average w[0]) 1.0 "mean 1"

        testCase "the trajectory filter drops the lowest ⌊q·n⌋ before the token count" <| fun () ->
            let t (lt: float) n = traj true (Array.create n (pos -1.0 lt 0.0))
            let step = [| t -1.0 2; t -3.0 3; t -2.0 4; t -5.0 5; t -4.0 6 |]
            let r = ShapedMethods.fireOpd.Create(dict [ "filter_fraction", 0.4; "beta", 0.0 ])
            let plan = StepPlan.plan r step
            Expect.equal plan.Kept [| true; true; true; false; false |] "the two lowest mean log π_T dropped"
            Expect.equal plan.Tokens 9.0 "Σ |y| over the kept trajectories"
            Expect.equal plan.Filtered 2 "two filtered"
            Expect.isTrue (plan.Weights[3] |> Array.forall ((=) 0.0)) "a dropped trajectory weighs nothing"
            Expect.equal (StepPlan.keep (DropLowestTeacherLogProb 0.2) step[..3]).Length 4 "⌊0.8⌋ = 0 of four dropped"
            Expect.isTrue (StepPlan.keep (DropLowestTeacherLogProb 0.2) step[..3] |> Array.forall id) "nothing dropped from four"

        testCase "rewards: clamp, step standardisation, return-to-go, by hand" <| fun () ->
            let step = [| traj true [| pos 0.0 10.0 0.0; pos 0.0 0.0 0.0 |]; traj false [| pos 0.0 -1.0 0.0 |] |]
            let pg = { Reward = LogRatio; RewardClip = 5.0; Gamma = 0.0; RatioClip = 0.0 }
            let a = StepPlan.advantages Reverse pg Standardise step [| true; true |]
            let r = [| 5.0; 0.0; -1.0 |]
            let m = Array.average r
            let s = sqrt (r |> Array.averageBy (fun x -> (x - m) ** 2.0))
            close (Array.concat a) (r |> Array.map (fun x -> (x - m) / (s + 1e-8))) "(clamp(r, ±5) − μ) / σ over the step"
            let a = StepPlan.advantages Reverse { pg with RewardClip = 0.0; Gamma = 0.5 } Off [| traj true [| pos 0.0 1.0 0.0; pos 0.0 2.0 0.0; pos 0.0 3.0 0.0 |] |] [| true |]
            close a[0] [| 1.0 + 0.5 * (2.0 + 0.5 * 3.0); 2.0 + 0.5 * 3.0; 3.0 |] "Σ γ^(t'−t) r_t'"
            let p = pos (log 0.2) (log 0.6) 0.0                                                      // r = 3
            Expect.floatClose Accuracy.high (StepPlan.reward Forward (FDivergence true) p) 3.0 "forward KL corrected: r"
            Expect.floatClose Accuracy.high (StepPlan.reward Forward (FDivergence false) p) (-3.0 * log 3.0) "forward KL surrogate: −r log r"
            Expect.floatClose Accuracy.high (StepPlan.reward Reverse (FDivergence true) p) (log 3.0 - 1.0) "reverse KL corrected: log r − 1"
            Expect.floatClose Accuracy.high (StepPlan.reward (Jsd 0.25) (FDivergence true) p) (log (0.25 * 3.0 + 0.75) / 0.25) "JSD corrected"

        testCase "OPD+: the corrected coefficient's expectation under π_θ is the exact gradient; the surrogate's is not" <| fun () ->
            for seed, temperature in [ 1, 1.0; 2, 0.7 ] do
                let zt, zs = random seed 6, random (seed + 50) 6
                let ls = Numerics.temperedLogProbs temperature zs
                let lt = Numerics.temperedLogProbs temperature zt
                let expected (direction: Direction) (corrected: bool) =
                    // E_{v∼π_θ}[c(v) ∇_z log π_θ(v)], c = −A: the gradient the policy-gradient form estimates.
                    Array.init 6 (fun j ->
                        Array.init 6 (fun v ->
                            let a = StepPlan.reward direction (FDivergence corrected) (pos ls[v] lt[v] 0.0)
                            exp ls[v] * -a * ((if v = j then 1.0 else 0.0) - exp ls[j]) / temperature) |> Array.sum)
                for direction in [ Forward; Reverse; Jsd 0.3 ] do
                    let exact = Objective.numericalGradient (Recipe.Create("f", direction, temperature = temperature)) zt zs 0 1e-6
                    let corrected = expected direction true
                    Array.iteri2 (fun j e c -> Expect.floatClose { absolute = 1e-6; relative = 1e-5 } c e $"{direction} T={temperature}: ∂/∂z_{j}") exact corrected
                let exact = Objective.numericalGradient (Recipe.Create("f", Forward, temperature = temperature)) zt zs 0 1e-6
                let gap = Array.map2 (fun a b -> abs (a - b)) exact (expected Forward false) |> Array.max
                Expect.isGreaterThan gap 1e-3 $"the forward-KL surrogate is biased (max gap {gap})"
                let reverseGap = Array.map2 (fun a b -> abs (a - b)) (Objective.numericalGradient (Recipe.Create("f", Reverse, temperature = temperature)) zt zs 0 1e-6) (expected Reverse false) |> Array.max
                Expect.isLessThan reverseGap 1e-5 "for the reverse KL the surrogate is already unbiased"

        testCase "the policy-gradient reference: −A ρ ∇log π_θ(y), and zero where PPO's clip binds" <| fun () ->
            let step = randomStep 5 5 [ 4 ]
            let recipe = ShapedMethods.tinker.Create(dict [ "ratio_clip", 0.2 ])
            let a = (ShapedObjective.evaluate recipe step).Plan.Advantages[0]
            // ρ outside 1 ± ε on the side where the clipped branch is the min at even positions; inside at odd ones.
            let rho i = if i % 2 = 1 then 1.05 elif a[i] > 0.0 then 1.5 else 0.5
            let behaviour = step[0].Student |> Array.mapi (fun i z -> (Numerics.temperedLogProbs 1.0 z)[step[0].Targets[i]] - log (rho i))
            let step = [| { step[0] with Behaviour = behaviour } |]
            let e = ShapedObjective.evaluate recipe step
            for p in 0 .. 3 do
                let zt, zs, y = step[0].Teacher[p], step[0].Student[p], step[0].Targets[p]
                let a = e.Plan.Advantages[0][p]
                let surrogate (z: float[]) =
                    let rho = exp ((Numerics.temperedLogProbs 1.0 z)[y] - behaviour[p])
                    -(min (rho * a) ((max 0.8 (min 1.2 rho)) * a)) / e.Plan.Tokens
                let numeric = Array.init 5 (fun j ->
                    let shifted d = let z = Array.copy zs in z[j] <- z[j] + d; surrogate z
                    (shifted 1e-6 - shifted -1e-6) / 2e-6)
                let analytic = e.Gradient[0][p]
                Array.iteri2 (fun j n g -> Expect.floatClose { absolute = 1e-7; relative = 1e-5 } g n $"position {p}, ∂/∂z_{j}") numeric analytic
                ignore zt
            for p in [ 0; 2 ] do Expect.isTrue (e.Gradient[0][p] |> Array.forall ((=) 0.0)) $"position {p}: the clip binds, no gradient"
            for p in [ 1; 3 ] do Expect.isTrue (e.Gradient[0][p] |> Array.exists ((<>) 0.0)) $"position {p}: inside 1 ± ε, a gradient"

        testCase "every method is a valid value with its source; Build rejects parameters it does not have" <| fun () ->
            Expect.equal (ShapedMethods.all |> Array.map (fun m -> m.ConfigName))
                [| "topd"; "topd-suppress"; "sg-opd"; "ta-opd"; "tropd-mask"; "tropd-clip"; "tropd-switch"; "fire-opd"; "gndpo"; "kat"; "esr"; "opd-plus"; "tinker" |] "the catalogue"
            for m in ShapedMethods.all do
                let r = ShapedMethods.defaultOf m
                Expect.isTrue r.IsShaped $"{m.ConfigName} is shaped"
                Expect.isEmpty (r.Problems()) $"{m.ConfigName} is valid"
                Expect.isNotEmpty m.Source $"{m.ConfigName} has a source"
                Expect.equal r.Trajectory Rollout $"{m.ConfigName} is an OPD method along y_o"
                let found = ShapedMethods.tryRecognise (r.WithTrajectory(Refined))
                Expect.isNotNull (box found) $"{m.ConfigName} is recognised"
                Expect.equal found.Method.ConfigName m.ConfigName $"{m.ConfigName} is recognised from its recipe"
                Expect.equal ((found.Method.Create found.Parameters).WithTrajectory(Refined)) (r.WithTrajectory(Refined)) "and rebuilt"
            Expect.throwsT<ArgumentException> (fun () -> ShapedMethods.sgOpd.Create(dict [ "window", 3.0 ]) |> ignore) "sg-opd has no window"
            Expect.throwsT<ArgumentException> (fun () -> ShapedMethods.esr.Create(dict [ "first_tokens", 2.5 ]) |> ignore) "N is whole"
            Expect.throwsT<ArgumentException> (fun () -> ShapedMethods.sgOpd.Create(dict [ "lambda", 1.5 ]) |> ignore) "λ ∈ [0, 1]"

        testCase "the methods' primitives as documented" <| fun () ->
            let d = ShapedMethods.defaultOf
            Expect.equal (d ShapedMethods.topd).Weighting (Product [| Gated(NotIsolatedSpike(4, 0.5)); SpreadDivergence(4, 0.5, 0.5) |]) "TOPD"
            Expect.equal (d ShapedMethods.sgOpd).Weighting (SignAgreement 0.5) "SG-OPD"
            Expect.equal (d ShapedMethods.taOpd).Weighting (Gated(TeachabilityAtLeast(8, 0.5))) "TA-OPD"
            let tinker = PolicyGradient { Reward = LogRatio; RewardClip = 0.0; Gamma = 0.0; RatioClip = 0.0 }
            Expect.equal ((d ShapedMethods.tropdMask).Weighting, (d ShapedMethods.tropdMask).Gradient) (Gated(TrustAtLeast 0.2), tinker) "TrOPD mask"
            Expect.equal (d ShapedMethods.tropdClip).Weighting Trust "TrOPD clip"
            Expect.equal (d ShapedMethods.tropdSwitch).Switch (Outliers(TrustAtLeast 0.2, Forward, TeacherTopK 32)) "TrOPD switch"
            Expect.equal ((d ShapedMethods.fireOpd).Filter, (d ShapedMethods.fireOpd).Weighting) (DropLowestTeacherLogProb 0.2, ConfidenceEntropy(1.0, 1.0)) "FiRe-OPD"
            Expect.equal ((d ShapedMethods.gndpo).Gradient, (d ShapedMethods.gndpo).StepNormalisation)
                (PolicyGradient { Reward = LogRatio; RewardClip = 5.0; Gamma = 0.0; RatioClip = 0.0 }, Standardise) "GNDPO"
            Expect.equal (d ShapedMethods.kat).Weighting (Gated(BeforeAgreementTrap(8, 0.05))) "KAT"
            Expect.equal (d ShapedMethods.esr).Weighting (Gated(FirstTokens 16)) "ESR"
            Expect.equal ((d ShapedMethods.opdPlus).Direction, (d ShapedMethods.opdPlus).Gradient)
                (Forward, PolicyGradient { Reward = FDivergence true; RewardClip = 0.0; Gamma = 0.0; RatioClip = 0.0 }) "OPD+"
            Expect.equal (d ShapedMethods.tinker).Gradient tinker "tinker"

        testCase "TrOPD's switch: trusted positions take the policy gradient, outliers the top-K forward KL" <| fun () ->
            let step = randomStep 11 6 [ 5; 4 ]
            let r = ShapedMethods.tropdSwitch.Create(dict [ "threshold", 0.5; "switch_top_k", 3.0 ])
            let e = ShapedObjective.evaluate r step
            let switched = e.Plan.Switched |> Array.concat
            Expect.isTrue (Array.contains true switched && Array.contains false switched) $"both kinds of position in %A{switched}"
            let stats = ShapedObjective.statistics r step
            for i in 0 .. 1 do
                for p in 0 .. step[i].Targets.Length - 1 do
                    let s = stats[i].Positions[p]
                    let isSwitched = e.Plan.Switched[i][p]
                    Expect.equal isSwitched (min (exp (s.TeacherLogProb - s.StudentLogProb)) 1.0 < 0.5) "switched exactly where trust < τ"
                    if isSwitched then
                        let other = Recipe.Create("o", Forward, support = TeacherTopK 3)
                        let g = Objective.numericalGradient other step[i].Teacher[p] step[i].Student[p] 0 1e-6 |> Array.map (fun x -> x / e.Plan.Tokens)
                        let analytic = e.Gradient[i][p]
                        Array.iteri2 (fun j a b -> Expect.floatClose { absolute = 1e-9; relative = 1e-6 } a b $"outlier ∂/∂z_{j}") analytic g
            Expect.floatClose Accuracy.high e.Plan.SwitchedFraction (float (switched |> Array.filter id |> Array.length) / 9.0) "switched fraction"

        testCase "invalid shaping is named" <| fun () ->
            let problems (r: Recipe) = String.Join("; ", r.Problems())
            Expect.stringContains (problems (Recipes.forwardKl.WithStepNormalisation(Standardise))) "needs the policy-gradient form" "standardise needs PG"
            Expect.stringContains (problems ((ShapedMethods.defaultOf ShapedMethods.tinker).WithClip(PerPosition 0.1))) "does not clip" "PG and a clip"
            Expect.stringContains (problems (Recipes.reverseKl.WithWeighting(Gated(NotIsolatedSpike(0, 1.0))))) "window w must be ≥ 1" "w = 0"
            Expect.stringContains (problems (Recipes.reverseKl.WithFilter(DropLowestTeacherLogProb 1.0))) "[0, 1)" "q = 1 drops everything"
            Expect.stringContains (problems (Recipes.reverseKl.WithWeighting(Product [| Gated(TeachabilityAtLeast(2, 0.1)); Gated(TeachabilityAtLeast(3, 0.1)) |]))) "share one k" "two k"

        testCase "each named method's plan on one hand-built trajectory" <| fun () ->
            // π_θ(y_t), π_T(y_t), D_t, H_t, teachability_t at four positions of a correct rollout.
            let rows = [ 0.5, 0.25, 0.2, 1.0, 0.9; 0.2, 0.6, 2.0, 2.0, 0.3; 0.4, 0.1, 0.1, 0.5, 0.6; 0.3, 0.3, 0.05, 1.5, 0.8 ]
            let step =
                [| traj true [| for ps, pt, d, h, teach in rows ->
                                 { StudentLogProb = log ps; TeacherLogProb = log pt; ReverseKl = d; StudentEntropy = h; Teachability = teach } |] |]
            let plan (m: ShapedMethod) ps = StepPlan.plan (m.Create(dict ps)) step
            let weights m ps = (plan m ps).Weights[0]
            let advantages m ps = (plan m ps).Advantages[0]
            // TOPD: position 1 (D = 2 > θ = 1) is followed by D = 0.1, 0.05: an isolated spike; no real divergence to spread.
            close (weights ShapedMethods.topd [ "window", 2.0; "threshold", 1.0 ]) [| 1.0; 0.0; 1.0; 1.0 |] "TOPD"
            close (weights ShapedMethods.topdSuppress [ "window", 2.0; "threshold", 1.0 ]) [| 1.0; 0.0; 1.0; 1.0 |] "TOPD suppression"
            // SG-OPD: sign(log π_T − log π_θ) = −, +, −, 0 on a correct rollout.
            close (weights ShapedMethods.sgOpd [ "lambda", 0.5 ]) [| 0.5; 1.5; 0.5; 1.0 |] "SG-OPD"
            close (weights ShapedMethods.taOpd [ "threshold", 0.5 ]) [| 1.0; 0.0; 1.0; 1.0 |] "TA-OPD: teachability 0.9, 0.3, 0.6, 0.8 ≥ 0.5"
            // TrOPD: trust = min(π_T/π_θ, 1) = 0.5, 1, 0.25, 1; rewards log(π_T/π_θ) = ln 0.5, ln 3, ln 0.25, 0.
            close (weights ShapedMethods.tropdMask [ "threshold", 0.4 ]) [| 1.0; 1.0; 0.0; 1.0 |] "TrOPD mask"
            close (advantages ShapedMethods.tropdMask [ "threshold", 0.4 ]) [| log 0.5; log 3.0; 0.0; 0.0 |] "TrOPD mask: A = 0 where masked"
            close (weights ShapedMethods.tropdClip []) [| 0.5; 1.0; 0.25; 1.0 |] "TrOPD clip"
            close (advantages ShapedMethods.tropdClip []) [| log 0.5; log 3.0; log 0.25; 0.0 |] "TrOPD clip: A"
            Expect.equal (plan ShapedMethods.tropdSwitch [ "threshold", 0.4 ]).Switched[0] [| false; false; true; false |] "TrOPD switch"
            // FiRe: π_T · H = 0.25, 1.2, 0.05, 0.45, over their mean 0.4875 (one trajectory: ⌊0.2⌋ = 0 dropped).
            close (weights ShapedMethods.fireOpd []) ([| 0.25; 1.2; 0.05; 0.45 |] |> Array.map (fun x -> x / 0.4875)) "FiRe-OPD"
            let r = [| log 0.5; log 3.0; log 0.25; 0.0 |]
            let m = Array.average r
            let sd = sqrt (r |> Array.averageBy (fun x -> (x - m) ** 2.0))
            close (advantages ShapedMethods.gndpo []) (r |> Array.map (fun x -> (x - m) / (sd + 1e-8))) "GNDPO"
            // KAT: windows of 2 have means 1.1, 1.05, 0.075; below θ = 1.06 first at start 1, so t < 3 counts.
            close (weights ShapedMethods.kat [ "window", 2.0; "threshold", 1.06 ]) [| 1.0; 1.0; 1.0; 0.0 |] "KAT"
            close (weights ShapedMethods.esr [ "first_tokens", 2.0 ]) [| 1.0; 1.0; 0.0; 0.0 |] "ESR"
            close (advantages ShapedMethods.opdPlus []) [| 0.5; 3.0; 0.25; 1.0 |] "OPD+ (forward KL): A = π_T/π_θ"
            let g2 = log 0.25
            let g1 = log 3.0 + 0.5 * g2
            close (advantages ShapedMethods.tinker [ "gamma", 0.5 ]) [| log 0.5 + 0.5 * g1; g1; g2; 0.0 |] "tinker, γ = 0.5"
    ]
