/// Shaped recipes (issue 19) through the TorchSharp executor — the statistics pass, the step plan, the weights,
/// advantages and switches applied inside the chunks — against Trd.Core's float64 reference (ShapedObjective).
module Trd.Tests.ShapedExecutorTests

open System
open System.Collections.Generic
open Expecto
open TorchSharp
open Trd.Core
open Trd.Runtime.Objectives

type private T = torch.Tensor

let private gaussian (rng: Random) (scale: float) (v: int) =
    Array.init v (fun _ ->
        let u1, u2 = 1.0 - rng.NextDouble(), rng.NextDouble()
        scale * sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))

let private dict (pairs: (string * float) list) =
    let d = Dictionary<string, float>()
    for k, v in pairs do d[k] <- v
    d :> IReadOnlyDictionary<string, float>

/// A step of trajectories with the given lengths: gaussian logits over V, targets sampled from the student.
let private step (seed: int) (v: int) (lengths: int list) : ShapedTrajectory[] =
    let rng = Random seed
    [| for i, n in List.indexed lengths ->
        let student = Array.init n (fun _ -> gaussian rng 2.5 v)
        let targets =
            student |> Array.map (fun z ->
                let p = Numerics.softmax z
                let u = rng.NextDouble()
                let mutable acc, k = 0.0, 0
                while k < v - 1 && acc + p[k] < u do
                    acc <- acc + p[k]
                    k <- k + 1
                k)
        { Teacher = Array.init n (fun _ -> gaussian rng 2.5 v); Student = student; Targets = targets; Correct = i % 2 = 0; Behaviour = [||] } |]

let private matrix (dtype: torch.ScalarType) (xs: float[][]) : T =
    torch.tensor(Array.concat xs, dtype = torch.float64).reshape(int64 xs.Length, int64 xs[0].Length).to_type(dtype)

let private maxRelErr (actual: float[]) (expected: float[]) =
    let scale = expected |> Array.map abs |> Array.max |> max 1e-30
    Array.map2 (fun a e -> abs (a - e) / scale) actual expected |> Array.max

let private flat (x: T) = x.to_type(torch.float64).cpu().data<float>().ToArray()

/// The executor's loss and ∂loss/∂z_θ for the step: statistics pass, plan (Trd.Core), then FromLogits with the plan.
let private executor (recipe: Recipe) (s: ShapedTrajectory[]) (compute: torch.ScalarType) (chunk: int) =
    let ids = [| 0 .. s.Length - 1 |]
    use zs = (matrix compute (s |> Array.collect (fun t -> t.Student))).requires_grad_()
    use zt = matrix compute (s |> Array.collect (fun t -> t.Teacher))
    use ys = torch.tensor(s |> Array.collect (fun t -> t.Targets) |> Array.map int64, dtype = torch.int64)
    let stats = ShapedStatistics.FromLogits(recipe, zs, zt, ys, chunk)
    let plan = StepPlan.plan recipe (ShapedStatistics.Split(stats, s |> Array.map (fun t -> t.Targets.Length), s |> Array.map (fun t -> t.Correct)))
    use m = PositionShaping.KeptMask(plan, ids, zs.device)
    let behaviour = s |> Array.collect (fun t -> t.Behaviour)
    use shaping =
        let fromPlan = PositionShaping.FromPlan(recipe, plan, ids, zs.device)
        if behaviour.Length = 0 then fromPlan
        else new PositionShaping(Weights = fromPlan.Weights, Advantages = fromPlan.Advantages, Switched = fromPlan.Switched,
                             BehaviourLogProbs = torch.tensor(behaviour, dtype = torch.float64))
    use r = ObjectiveExecutor.FromLogits(recipe, zs, zt, m, ys, ObjectiveOptions(ChunkSize = chunk, ComputeType = compute, Normaliser = plan.Tokens, Shaping = shaping))
    r.Loss.backward()
    plan, stats, r.Loss.to_type(torch.float64).item<float>(), flat zs.grad

/// Each method with parameters that make its primitives act on this small random step (its defaults are the papers'
/// or Trd's; here the thresholds sit where V = 11 gaussian logits put the statistics).
let private cases : (string * Recipe) list =
    let b (m: ShapedMethod) ps = m.ConfigName, m.Create(dict ps)
    [ b ShapedMethods.topd [ "window", 2.0; "threshold", 4.5 ]
      b ShapedMethods.topdSuppress [ "window", 2.0; "threshold", 4.5 ]
      b ShapedMethods.sgOpd []
      b ShapedMethods.taOpd [ "teachability_k", 3.0; "threshold", 0.3 ]
      b ShapedMethods.tropdMask [ "threshold", 0.5 ]
      b ShapedMethods.tropdClip [ "gamma", 0.5 ]
      b ShapedMethods.tropdSwitch [ "threshold", 0.5; "switch_top_k", 4.0 ]
      b ShapedMethods.fireOpd [ "filter_fraction", 0.34 ]
      b ShapedMethods.gndpo []
      b ShapedMethods.kat [ "window", 2.0; "threshold", 3.5 ]
      b ShapedMethods.esr [ "first_tokens", 3.0 ]
      b ShapedMethods.opdPlus [ "reward_clip", 20.0 ]
      "opd-plus (JSD 0.3)", (ShapedMethods.defaultOf ShapedMethods.opdPlus).WithDirection(Jsd 0.3)
      b ShapedMethods.tinker [ "gamma", 0.9 ]
      "topd at T = 0.7 along y_r", (ShapedMethods.topd.Create(dict [ "window", 2.0; "threshold", 3.0 ])).WithTemperature(0.7).WithTrajectory(Refined) ]

let private gating = set [ "topd"; "topd-suppress"; "ta-opd"; "tropd-mask"; "kat"; "esr" ]

[<Tests>]
let tests =
    testList "Shaped executor" [
        for name, recipe in cases do
            testCase $"{name}: statistics, plan, loss and gradient = the float64 reference (V = 11, chunks of 2)" <| fun () ->
                let s = step 7 11 [ 5; 4; 6 ]
                let reference = ShapedObjective.evaluate recipe s
                let plan, stats, loss, grad = executor recipe s torch.float64 2
                let expectedStats = ShapedObjective.statistics recipe s |> Array.collect (fun t -> t.Positions)
                let field (f: PositionStatistics -> float) (xs: PositionStatistics[]) = xs |> Array.map f |> Array.map (fun x -> if Double.IsNaN x then 0.0 else x)
                for what, f in [ "log π_θ(y)", (fun (p: PositionStatistics) -> p.StudentLogProb); "log π_T(y)", (fun p -> p.TeacherLogProb)
                                 "D_t", (fun p -> p.ReverseKl); "H", (fun p -> p.StudentEntropy); "teachability", (fun p -> p.Teachability) ] do
                    Expect.isLessThanOrEqual (maxRelErr (field f stats) (field f expectedStats)) 1e-12 $"statistics: {what}"
                Expect.equal plan.Kept reference.Plan.Kept "kept trajectories"
                Expect.isLessThanOrEqual (maxRelErr (Array.concat plan.Weights) (Array.concat reference.Plan.Weights)) 1e-10 "weights"
                Expect.equal plan.Switched reference.Plan.Switched "switched positions"
                if recipe.Gradient.IsPolicyGradient then
                    Expect.isLessThanOrEqual (maxRelErr (Array.concat plan.Advantages) (Array.concat reference.Plan.Advantages)) 1e-10 "advantages"
                Expect.floatClose { absolute = 1e-12; relative = 1e-9 } loss reference.Loss "loss"
                let expected = reference.Gradient |> Array.concat |> Array.concat
                Expect.isLessThanOrEqual (maxRelErr grad expected) 1e-6 "∂loss/∂z_θ"
                Expect.isTrue (grad |> Array.exists (fun g -> g <> 0.0)) "something is learned"
                if gating.Contains name then
                    Expect.isTrue (plan.MaskedFraction > 0.0 && plan.MaskedFraction < 1.0) $"the gate masks some positions, not all ({plan.MaskedFraction}; D = %A{stats |> Array.map (fun p -> Math.Round(p.ReverseKl, 2))})"

        testCase "tinker with stale rollouts: the importance ratio and PPO's clip against the reference" <| fun () ->
            let s = step 9 11 [ 4; 4 ]
            let rng = Random 4
            let s = s |> Array.map (fun t ->
                { t with Behaviour = Array.init t.Targets.Length (fun i -> (Numerics.logSoftmax t.Student[i])[t.Targets[i]] + 0.6 * (rng.NextDouble() - 0.5)) })
            let recipe = ShapedMethods.tinker.Create(dict [ "ratio_clip", 0.1 ])
            let reference = ShapedObjective.evaluate recipe s
            let _, _, loss, grad = executor recipe s torch.float64 3
            Expect.floatClose { absolute = 1e-12; relative = 1e-9 } loss reference.Loss "loss"
            Expect.isLessThanOrEqual (maxRelErr grad (reference.Gradient |> Array.concat |> Array.concat)) 1e-6 "∂loss/∂z_θ"
            Expect.isTrue (reference.Gradient |> Array.concat |> Array.exists (Array.forall ((=) 0.0))) "the clip binds somewhere"

        testCase "float32 compute agrees with the float64 reference to 1e-5" <| fun () ->
            let s = step 13 40 [ 7; 9 ]
            for name, recipe in cases |> List.filter (fun (n, _) -> n = "topd" || n = "gndpo" || n = "tropd-switch") do
                let reference = ShapedObjective.evaluate recipe s
                let _, _, loss, grad = executor recipe s torch.float32 4
                Expect.floatClose { absolute = 1e-6; relative = 1e-5 } loss reference.Loss $"{name}: loss"
                Expect.isLessThanOrEqual (maxRelErr grad (reference.Gradient |> Array.concat |> Array.concat)) 1e-4 $"{name}: gradient"

        testCase "fused at Qwen3's V = 151,936, fp32: every method's statistics, plan and loss, and two gradients = the float64 reference" <| fun () ->
            let v, h = 151936, 8
            torch.manual_seed 19L |> ignore
            use hs = torch.randn(6L, int64 h, dtype = torch.float32)
            use ws = torch.randn(int64 v, int64 h, dtype = torch.float32) * 0.8f
            use ht = torch.randn(6L, int64 h, dtype = torch.float32)
            use wt = torch.randn(int64 v, int64 h, dtype = torch.float32) * 0.8f
            let logits (a: T) (b: T) = a.to_type(torch.float64).matmul(b.to_type(torch.float64).t()).data<float>().ToArray() |> Array.chunkBySize v
            let zs, zt = logits hs ws, logits ht wt
            let ys = zs |> Array.map (fun z -> Array.IndexOf(z, Array.max z))                   // the student's argmax: π_θ(y) is not tiny
            let s = [| { Teacher = zt[0..2]; Student = zs[0..2]; Targets = ys[0..2]; Correct = true; Behaviour = [||] }
                       { Teacher = zt[3..5]; Student = zs[3..5]; Targets = ys[3..5]; Correct = false; Behaviour = [||] } |]
            use yt = torch.tensor(ys |> Array.map int64, dtype = torch.int64)
            // Every method's statistics, plan and loss; the gradient for two whose ∂/∂z has a closed form here.
            for m in ShapedMethods.all do
                let recipe = ShapedMethods.defaultOf m
                let reference = ShapedObjective.loss recipe s
                let stats = ShapedStatistics.Fused(recipe, hs, ws, ht, wt, yt, 2)
                let plan = StepPlan.plan recipe (ShapedStatistics.Split(stats, [| 3; 3 |], [| true; false |]))
                Expect.isLessThanOrEqual (maxRelErr (Array.concat plan.Weights) (Array.concat reference.Plan.Weights)) 1e-4 $"{m.ConfigName}: weights"
                Expect.equal plan.Switched reference.Plan.Switched $"{m.ConfigName}: switched"
                use mask = PositionShaping.KeptMask(plan, [| 0; 1 |], hs.device)
                use shaping = PositionShaping.FromPlan(recipe, plan, [| 0; 1 |], hs.device)
                use r = ObjectiveExecutor.Fused(recipe, hs, ws, ht, wt, mask, yt, ObjectiveOptions(ChunkSize = 2, Normaliser = plan.Tokens, Shaping = shaping))
                Expect.floatClose { absolute = 1e-6; relative = 1e-4 } (float (r.Loss.item<float32>())) reference.Loss $"{m.ConfigName}: loss"
            for recipe in [ ShapedMethods.gndpo.Create(dict []); ShapedMethods.topd.Create(dict [ "window", 1.0; "threshold", 2.0 ]) ] do
                let reference = ShapedObjective.loss recipe s
                let stats = ShapedStatistics.Fused(recipe, hs, ws, ht, wt, yt, 2)
                let expected = ShapedObjective.statistics recipe s |> Array.collect (fun t -> t.Positions)
                Expect.isLessThanOrEqual (maxRelErr (stats |> Array.map (fun p -> p.ReverseKl)) (expected |> Array.map (fun p -> p.ReverseKl))) 1e-5 $"{recipe.Name}: D_t"
                Expect.isLessThanOrEqual (maxRelErr (stats |> Array.map (fun p -> p.StudentEntropy)) (expected |> Array.map (fun p -> p.StudentEntropy))) 1e-5 $"{recipe.Name}: H"
                let plan = StepPlan.plan recipe (ShapedStatistics.Split(stats, [| 3; 3 |], [| true; false |]))
                Expect.equal plan.Weights.Length 2 "two trajectories"
                use m = PositionShaping.KeptMask(plan, [| 0; 1 |], hs.device)
                use shaping = PositionShaping.FromPlan(recipe, plan, [| 0; 1 |], hs.device)
                use h1 = hs.detach().requires_grad_()
                use r = ObjectiveExecutor.Fused(recipe, h1, ws, ht, wt, m, yt, ObjectiveOptions(ChunkSize = 2, Normaliser = plan.Tokens, Shaping = shaping))
                r.Loss.backward()
                Expect.floatClose { absolute = 1e-6; relative = 1e-5 } (float (r.Loss.item<float32>())) reference.Loss $"{recipe.Name}: loss"
                // ∂loss/∂h = (∂loss/∂z) W: the reference's ∂/∂z in closed form (policy gradient, or w × the reverse KL's).
                let dz =
                    Array.init 6 (fun i ->
                        let ti, pi = i / 3, i % 3
                        let w = reference.Plan.Weights[ti][pi] / reference.Plan.Tokens
                        match recipe.Gradient with
                        | PolicyGradient _ ->
                            let a = reference.Plan.Advantages[ti][pi]
                            let p = Numerics.softmax zs[i]
                            p |> Array.mapi (fun j pj -> -w * a * ((if j = ys[i] then 1.0 else 0.0) - pj))
                        | ExactGradient -> Divergence.reverseKlGradient 1.0 zt[i] zs[i] |> Array.map (fun g -> w * g))
                let wd = ws.to_type(torch.float64).data<float>().ToArray()
                let expectedGrad = Array.init (6 * h) (fun k -> let i, c = k / h, k % h in Array.fold2 (fun acc g j -> acc + g * wd[j * h + c]) 0.0 dz[i] [| 0 .. v - 1 |])
                Expect.isLessThanOrEqual (maxRelErr (flat h1.grad) expectedGrad) 1e-4 $"{recipe.Name}: ∂/∂h"

        testCase "a shaped recipe without its plan, a plan without a shaped recipe, and the naive path are refused" <| fun () ->
            use z = torch.randn(3L, 5L)
            use m = torch.ones(3L)
            use y = torch.tensor([| 0L; 1L; 2L |])
            let tinker = ShapedMethods.defaultOf ShapedMethods.tinker
            let message (f: unit -> unit) = try f (); "" with :? ArgumentException as e -> e.Message
            Expect.stringContains (message (fun () -> ObjectiveExecutor.FromLogits(tinker, z, z, m, y) |> ignore)) "needs the step's plan" "no plan"
            use w = torch.ones(3L, dtype = torch.float64)
            Expect.stringContains (message (fun () -> ObjectiveExecutor.FromLogits(Recipes.trd, z, z, m, y, ObjectiveOptions(Shaping = new PositionShaping(Weights = w))) |> ignore)) "no shaping primitive" "a plan for an unshaped recipe"
            Expect.stringContains (message (fun () -> ObjectiveExecutor.FromLogits(tinker, z, z, m, y, ObjectiveOptions(Shaping = new PositionShaping(Weights = w))) |> ignore)) "PositionShaping.Advantages" "PG without advantages"
            use w2 = torch.ones(2L, dtype = torch.float64)
            Expect.stringContains (message (fun () -> ObjectiveExecutor.FromLogits(ShapedMethods.defaultOf ShapedMethods.esr, z, z, m, y, ObjectiveOptions(Shaping = new PositionShaping(Weights = w2))) |> ignore)) "[N] = [3]" "weights of the wrong length"
            Expect.stringContains (message (fun () -> ObjectiveExecutor.Naive(tinker, z, z, m, y) |> ignore)) "is shaped" "naive"
            Expect.stringContains (message (fun () -> ObjectiveExecutor.FromLogits(tinker, z, z, m, null, ObjectiveOptions(Shaping = new PositionShaping(Weights = w, Advantages = w))) |> ignore)) "policy-gradient form needs the trajectory tokens" "PG without targets"
    ]
