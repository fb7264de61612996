module Trd.Tests.RecipeTests

open System
open Expecto
open Trd.Core
open Trd.Tests.Generators

let private expectProblem (problems: string[]) (fragment: string) (what: string) =
    Expect.isTrue (problems |> Array.exists (fun p -> p.Contains(fragment: string))) $"{what}: a problem mentions '{fragment}' in %A{problems}"

/// Two-entry logits [0, log(q1/q0)] so that softmax = (q0, q1).
let private twoPoint (p0: float) = [| log p0; log (1.0 - p0) |]

/// Forward KL of (p0, 1 − p0) against (q0, 1 − q0), by hand.
let private kl2 (p0: float) (q0: float) = p0 * log (p0 / q0) + (1.0 - p0) * log ((1.0 - p0) / (1.0 - q0))

let recipeTests =
    testList "Recipe" [
        testCase "the five paper recipes have the Table 13 settings under OPD and OPSD" <| fun () ->
            for setting, c in [ Opd, 0.1; Opsd, 0.06 ] do
                let all = Recipes.all setting
                Expect.equal (all |> Array.map (fun r -> r.Name)) [| "Forward KL"; "Forward KL w/ Clip"; "Reverse KL"; "Reverse KL w/ Top-K"; "TRD" |] "order and names"
                Expect.equal (all |> Array.map (fun r -> r.Direction)) [| Forward; Forward; Reverse; Reverse; Forward |] "KL direction"
                Expect.equal (all |> Array.map (fun r -> r.Clip)) [| NoClip; PerPosition c; NoClip; NoClip; NoClip |] $"clip c = {c} under {setting}"
                Expect.equal (all |> Array.map (fun r -> r.Support)) [| FullVocabulary; FullVocabulary; FullVocabulary; TeacherTopK 32; FullVocabulary |] "support (top-K 32, renormalised)"
                Expect.equal (all |> Array.map (fun r -> r.Trajectory)) [| Rollout; Rollout; Rollout; Rollout; Refined |] "trajectory y_o / y_r"
                Expect.equal (all |> Array.map (fun r -> r.TeacherPrompt)) [| Vanilla; Vanilla; Vanilla; Vanilla; Refine |] "teacher prompt"
                Expect.all all (fun r -> r.Temperature = 1.0) "T = 1"
                Expect.all all (fun r -> r.Estimator = Exact) "exact (full distributions)"

        testCase "the paper's clip constants are 0.1 (OPD) and 0.06 (OPSD) and top-K is 32" <| fun () ->
            Expect.equal (Recipes.paperClipConstant Opd) 0.1 "OPD"
            Expect.equal (Recipes.paperClipConstant Opsd) 0.06 "OPSD"
            Expect.equal Recipes.PaperTopK 32 "K"

        testCase "every paper recipe validates and has no problems" <| fun () ->
            for setting in [ Opd; Opsd ] do
                for r in Recipes.all setting do
                    Expect.isEmpty (Recipe.problems r) $"{r.Name} ({setting})"
                    Expect.equal (Recipe.validate r) r $"{r.Name} validates unchanged"

        testCase "Recipe.Create defaults: full vocabulary, exact, no clip, T = 1, along y_o, vanilla prompt" <| fun () ->
            let r = Recipe.Create("x", Jsd 0.5)
            Expect.equal r
                { Name = "x"; Direction = Jsd 0.5; Support = FullVocabulary; Estimator = Exact; Clip = NoClip
                  Temperature = 1.0; Trajectory = Rollout; TeacherPrompt = Vanilla
                  Weighting = Uniform; Switch = NoSwitch; Filter = KeepAll; StepNormalisation = Off; Gradient = ExactGradient } "defaults"
            let s = Recipe.Create("y", Reverse, estimator = K3, temperature = 2.0)
            Expect.equal (s.Estimator, s.Temperature, s.Support) (K3, 2.0, FullVocabulary) "named optional arguments override only themselves"

        testCase "each single invalid setting gives exactly one problem naming it" <| fun () ->
            let cases =
                [ Recipe.Create("a", Jsd 1.5), "β"
                  Recipe.Create("b", Jsd -0.1), "β"
                  Recipe.Create("c", Forward, clip = PerPosition 0.0), "clip constant"
                  Recipe.Create("d", Forward, clip = PerVocabEntry -1.0), "clip constant"
                  Recipe.Create("e", Forward, clip = PerPosition nan), "clip constant"
                  Recipe.Create("f", Reverse, support = TeacherTopK 0), "K ≥ 1"
                  Recipe.Create("g", Reverse, support = TeacherTopKWithTail -2), "K ≥ 1"
                  Recipe.Create("h", Forward, temperature = 0.0), "temperature"
                  Recipe.Create("i", Forward, temperature = -1.0), "temperature"
                  Recipe.Create("j", Forward, temperature = infinity), "temperature"
                  Recipe.Create("k", Forward, estimator = K1), "reverse KL"
                  Recipe.Create("l", Jsd 0.5, estimator = K3), "reverse KL"
                  Recipe.Create("m", Reverse, estimator = K2, support = TeacherTopK 4), "support does not apply"
                  Recipe.Create("n", Reverse, estimator = K1, clip = PerVocabEntry 0.1), "exact estimator"
                  Recipe.Create("o", Forward, teacherPrompt = Refine), "Trajectory = Refined"
                  Recipe.Create(" ", Forward), "no name" ]
            for r, fragment in cases do
                let ps = Recipe.problems r
                Expect.hasLength ps 1 $"recipe '{r.Name}': %A{ps}"
                expectProblem ps fragment r.Name
                let ex = Expect.throwsC (fun () -> Recipe.validate r |> ignore) id
                Expect.isTrue (ex :? ArgumentException) "validate throws ArgumentException"
                Expect.stringContains ex.Message ps[0] "the exception lists the problem"

        testCase "an invalid recipe lists every problem at once" <| fun () ->
            let r =
                { Name = "bad"; Direction = Jsd 2.0; Support = TeacherTopK 0; Estimator = Exact; Clip = PerPosition -0.5
                  Temperature = 0.0; Trajectory = Rollout; TeacherPrompt = Refine
                  Weighting = Uniform; Switch = NoSwitch; Filter = KeepAll; StepNormalisation = Off; Gradient = ExactGradient }
            let ps = Recipe.problems r
            Expect.hasLength ps 5 $"%A{ps}"
            for fragment in [ "β"; "K ≥ 1"; "clip constant"; "temperature"; "Trajectory = Refined" ] do
                expectProblem ps fragment "all problems"
            let ex = Expect.throwsC (fun () -> Recipe.validate r |> ignore) id
            for p in ps do Expect.stringContains ex.Message p "validate's message lists every problem"
            // a sampled estimator with forward direction adds its own problem
            Expect.hasLength (Recipe.problems { r with Estimator = K1; Direction = Forward; Support = FullVocabulary }) 4 "β and K problems gone, sampled-direction problem added"

        testCase "teacherContext matches Eq. 1 (OPD), Eq. 2 (OPSD) and Eq. 6 (refine) for each setting and prompt" <| fun () ->
            let vanilla, refine = Recipes.forwardKl, Recipes.trd
            // Eq. 1: π_T(· | x, y_<t)
            Expect.equal (Recipe.teacherContext Opd vanilla) [| Problem; TrajectoryPrefix |] "OPD vanilla"
            // Eq. 2: π_θ(· | x, y*, y_<t)
            Expect.equal (Recipe.teacherContext Opsd vanilla) [| Problem; ReferenceSolution; TrajectoryPrefix |] "OPSD vanilla"
            // Eq. 6: π_T(· | x, y_o, y_r,<t); under OPSD y* follows y_o (q(· | x, y_o, y*))
            Expect.equal (Recipe.teacherContext Opd refine) [| Problem; WholeRollout; TrajectoryPrefix |] "OPD refine"
            Expect.equal (Recipe.teacherContext Opsd refine) [| Problem; WholeRollout; ReferenceSolution; TrajectoryPrefix |] "OPSD refine"
            for setting in [ Opd; Opsd ] do
                for r in Recipes.all setting do
                    Expect.equal (Recipe.studentContext r) [| Problem; TrajectoryPrefix |] $"student sees x, y_<t ({r.Name})"
                    Expect.isFalse (Recipe.teacherContext setting r |> Array.contains ReferenceSolution && setting = Opd) "no y* under OPD"
    ]

let clipTests =
    testList "Clip" [
        testProperty "per-position clip contributes min(D, c) and flags D > c" <|
            FsCheck.FSharp.Prop.forAll logitPairs (fun pair ->
                for c in [ 0.06; 0.1; 1.0 ] do
                    let d = (Objective.position Recipes.forwardKl pair.Teacher pair.Student -1).Divergence
                    let v = Objective.position (Recipes.forwardKl.WithClip(PerPosition c)) pair.Teacher pair.Student -1
                    Expect.equal v.Divergence d "D is reported before clipping"
                    Expect.equal v.Contribution (min d c) "contribution = min(D, c)"
                    Expect.equal v.Clipped (d > c) "clipped iff D > c")

        testCase "the numerical gradient is exactly zero at a position with D > c and nonzero below c" <| fun () ->
            // forward KL of (1/2, 1/2) vs (1/4, 3/4) is ½ ln(4/3) ≈ 0.144 > 0.1
            let teacher, student = twoPoint 0.5, twoPoint 0.25
            let clipped = Recipes.forwardKlClip Opd
            let g = Objective.numericalGradient clipped teacher student -1 1e-5
            Expect.equal g [| 0.0; 0.0 |] "no gradient above c"
            // (1/2, 1/2) vs (0.4, 0.6): ½ ln(25/24) ≈ 0.020 < 0.1
            let g2 = Objective.numericalGradient clipped teacher (twoPoint 0.4) -1 1e-5
            Expect.isTrue (g2 |> Array.exists (fun x -> abs x > 1e-3)) $"gradient below c: %A{g2}"
            // and equal to the unclipped gradient (q − p) there
            expectVecRel 1e-6 g2 [| 0.4 - 0.5; 0.6 - 0.5 |] "below c the clip is inactive"

        testCase "per-vocabulary-entry clipping differs from per-position clipping (constructed example)" <| fun () ->
            // p = (1/2, 1/2), q = (0.2, 0.8): entry terms ½ ln 2.5 ≈ 0.458 and ½ ln 0.625 ≈ −0.235; c = 0.1.
            let teacher, student = twoPoint 0.5, twoPoint 0.2
            let c = 0.1
            let perPosition = Objective.position (Recipes.forwardKl.WithClip(PerPosition c)) teacher student -1
            let perEntry = Objective.position (Recipes.forwardKl.WithClip(PerVocabEntry c)) teacher student -1
            let d = kl2 0.5 0.2
            Expect.isGreaterThan d c "D > c"
            expectRel 1e-14 perPosition.Contribution c "per position: min(D, c) = c"
            expectRel 1e-14 perEntry.Contribution (c + 0.5 * log 0.625) "per entry: min(½ ln 2.5, c) + ½ ln 0.625"
            Expect.isLessThan perEntry.Contribution 0.0 "per-entry clipping can make the position negative"
            Expect.isFalse perEntry.Clipped "per-entry clipping never flags the position"

        testCase "clip constants c ≤ 0, NaN and ∞ are rejected" <| fun () ->
            for c in [ 0.0; -0.1; nan; infinity ] do
                for clip in [ PerPosition c; PerVocabEntry c ] do
                    Expect.throwsT<ArgumentException> (fun () -> Clip.check clip) $"{clip}"
                    Expect.throwsT<ArgumentException> (fun () -> Objective.position (Recipes.forwardKl.WithClip clip) [| 0.0; 1.0 |] [| 1.0; 0.0 |] -1 |> ignore) $"position with {clip}"
            Clip.check NoClip
            Clip.check (PerPosition 0.06)

        testCase "at D = c exactly the position is not flagged as clipped (torch.clamp semantics)" <| fun () ->
            Expect.isFalse (Clip.isClipped (PerPosition 0.1) 0.1) "D = c"
            Expect.isTrue (Clip.isClipped (PerPosition 0.1) 0.1000001) "D > c"
            Expect.equal (Clip.applyToPosition (PerPosition 0.1) 0.3) 0.1 "min"
            Expect.equal (Clip.applyToEntries (PerVocabEntry 0.1) [| 0.3; -0.2; 0.05 |]) [| 0.1; -0.2; 0.05 |] "entries capped from above only"
    ]

let objectiveTests =
    testList "Objective.evaluate" [
        // Positions with forward-KL values known by hand (T = 1, V = 2):
        //   0: (1/2, 1/2) vs (1/4, 3/4)  D = ½ ln(4/3) ≈ 0.144  (> c = 0.1)
        //   1: equal                      D = 0
        //   2: (1/2, 1/2) vs (0.4, 0.6)  D = ½ ln(25/24) ≈ 0.020
        //   3: (0.9, 0.1) vs (0.01, 0.99) large D, masked out
        let teacher = [| twoPoint 0.5; twoPoint 0.3; twoPoint 0.5; twoPoint 0.9 |]
        let student = [| twoPoint 0.25; twoPoint 0.3; twoPoint 0.4; twoPoint 0.01 |]
        let ds = [| 0.5 * log (4.0 / 3.0); 0.0; 0.5 * log (25.0 / 24.0); kl2 0.9 0.01 |]

        testCase "loss, KlPreClip, KlPostClip and ClipFraction on a hand-made batch (c = 0.1, 0/1 mask)" <| fun () ->
            let mask = [| 1.0; 1.0; 1.0; 0.0 |]
            let e = Objective.evaluate (Recipes.forwardKlClip Opd) teacher student mask [||] 0.0
            let contributions = [| 0.1; 0.0; ds[2] |]
            expectRel 1e-13 e.Loss (Array.sum contributions / 3.0) "loss = Σ m min(D, c) / Σ m"
            expectRel 1e-13 e.KlPreClip ((ds[0] + ds[1] + ds[2]) / 3.0) "KL pre-clip"
            expectRel 1e-13 e.KlPostClip (Array.sum contributions / 3.0) "KL post-clip"
            expectRel 1e-15 e.ClipFraction (1.0 / 3.0) "one of three masked positions clipped (the masked one is ignored)"
            Expect.equal e.Tokens 3.0 "tokens"
            Array.iteri (fun i d -> expectAbs 1e-14 e.PerPosition[i] d $"D_{i}") ds

        testCase "the loss divides by the given normaliser; the KL metrics by the batch's own Σ m (fractional mask)" <| fun () ->
            let mask = [| 0.5; 1.0; 2.0; 0.0 |]
            let e = Objective.evaluate (Recipes.forwardKlClip Opd) teacher student mask [||] 10.0
            let num = 0.5 * 0.1 + 1.0 * 0.0 + 2.0 * ds[2]
            expectRel 1e-13 e.Loss (num / 10.0) "loss over the step's normaliser"
            expectRel 1e-13 e.KlPostClip (num / 3.5) "post-clip over Σ m"
            expectRel 1e-13 e.KlPreClip ((0.5 * ds[0] + 2.0 * ds[2]) / 3.5) "pre-clip over Σ m"
            expectRel 1e-15 e.ClipFraction (0.5 / 3.5) "clip fraction is mask-weighted"

        testCase "without clipping loss = KlPreClip = KlPostClip and ClipFraction = 0" <| fun () ->
            let mask = [| 1.0; 1.0; 1.0; 1.0 |]
            let e = Objective.evaluate Recipes.forwardKl teacher student mask [||] 0.0
            expectRel 1e-13 e.Loss (Array.sum ds / 4.0) "loss"
            Expect.equal e.KlPreClip e.KlPostClip "pre = post"
            Expect.equal e.ClipFraction 0.0 "no clip"

        testCase "a sampled estimator reads the target token of each position" <| fun () ->
            // k1 = log q(y) − log p(y)
            let e = Objective.evaluate (Recipes.reverseKl.WithEstimator K1) teacher student [| 1.0; 1.0; 1.0; 1.0 |] [| 0; 1; 1; 0 |] 0.0
            let expected = [| log (0.25 / 0.5); log (0.7 / 0.7); log (0.6 / 0.5); log (0.01 / 0.9) |]
            Array.iteri (fun i x -> expectAbs 1e-14 e.PerPosition[i] x $"k1 at {i}") expected
            Expect.throwsT<ArgumentException> (fun () -> Objective.evaluate (Recipes.reverseKl.WithEstimator K1) teacher student [| 1.0; 1.0; 1.0; 1.0 |] [||] 0.0 |> ignore) "targets required"

        testCase "an empty mask raises" <| fun () ->
            let ex = Expect.throwsC (fun () -> Objective.evaluate Recipes.forwardKl teacher student [| 0.0; 0.0; 0.0; 0.0 |] [||] 0.0 |> ignore) id
            Expect.isTrue (ex :? ArgumentException) "ArgumentException"
            Expect.stringContains ex.Message "empty mask" "names the problem"

        testCase "a vocabulary size mismatch raises naming both sizes (151936 vs 152064)" <| fun () ->
            let t = Array.zeroCreate<float> 151936
            let s = Array.zeroCreate<float> 152064
            let ex = Expect.throwsC (fun () -> Objective.evaluate Recipes.forwardKl [| t |] [| s |] [| 1.0 |] [||] 0.0 |> ignore) id
            Expect.isTrue (ex :? ArgumentException) "ArgumentException"
            Expect.stringContains ex.Message "151936" "teacher size"
            Expect.stringContains ex.Message "152064" "student size"

        testCase "mismatched batch lengths raise" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Objective.evaluate Recipes.forwardKl teacher student[.. 2] [| 1.0; 1.0; 1.0; 1.0 |] [||] 0.0 |> ignore) "student positions"
            Expect.throwsT<ArgumentException> (fun () -> Objective.evaluate Recipes.forwardKl teacher student [| 1.0 |] [||] 0.0 |> ignore) "mask length"

        testCase "invalid logits in a batch raise (NaN, all −∞)" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Objective.evaluate Recipes.forwardKl [| [| 0.0; nan |] |] [| [| 0.0; 0.0 |] |] [| 1.0 |] [||] 0.0 |> ignore) "NaN teacher"
            Expect.throwsT<ArgumentException> (fun () -> Objective.evaluate Recipes.forwardKl [| [| 0.0; 0.0 |] |] [| [| -infinity; -infinity |] |] [| 1.0 |] [||] 0.0 |> ignore) "all −∞ student"
    ]

[<Tests>]
let tests = testList "Recipe" [ recipeTests; clipTests; objectiveTests ]
