module Trd.Tests.DivergenceTests

open System
open Expecto
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

let private ninf = Double.NegativeInfinity

/// |a − b| ≤ rel · max(|a|, |b|) + abs.
let private expectClose (rel: float) (abs': float) (actual: float) (expected: float) (what: string) =
    let d = abs (actual - expected)
    if not (actual = expected || d <= rel * max (abs actual) (abs expected) + abs') then
        failwithf "%s: expected %.17g, got %.17g (difference %.3g)" what expected actual d

/// The position's divergence under a recipe (raw logits in; temperature, support, estimator inside).
let private divergenceOf (recipe: Recipe) (teacher: float[]) (student: float[]) =
    (Objective.position recipe teacher student -1).Divergence

/// The absolute rounding floor of a divergence computed from this pair: 1e-14 · the largest finite |logit|
/// (log-probabilities from logits of size L carry absolute errors of a few ulp(L)).
let private floorOf (pair: LogitPair) = 1e-14 * logitScale [ pair.Teacher; pair.Student ]

/// Ordinary pairs at scales 0.1 … 3 (no probability is so close to 0 or 1 that a difference is lost).
let private moderatePairGen =
    gen {
        let! seed = Gen.choose (0, Int32.MaxValue)
        let! v = Gen.choose (2, 64)
        let! scale = Gen.elements [ 0.1; 1.0; 3.0 ]
        return makeLogitPair seed v false scale
    }

let private recipe (direction: Direction) = Recipe.Create("test", direction)

let private withSupport (support: Support) (direction: Direction) = Recipe.Create("test", direction, support = support)

let private betaGen = Gen.elements [ 0.0; 1e-3; 0.1; 0.25; 0.5; 0.75; 0.9; 0.999; 1.0 ]

let private pairsWithBeta = Arb.fromGen (Gen.zip logitPairGen betaGen)

let private pairsWithK =
    gen {
        let! pair = logitPairGen
        let! k = Gen.choose (1, pair.V)
        return pair, k
    }
    |> Arb.fromGen

let private temperatures = Gen.elements [ 0.5; 1.0; 2.0 ]

/// The un-renormalised top-K sum Σ_{v∈S} p(v) log(p(v)/q(v)) some frameworks compute.
let private naiveTopKSum (k: int) (teacher: float[]) (student: float[]) =
    let p, q = Naive.softmax teacher, Naive.softmax student
    let s = Array.init teacher.Length id |> Array.sortBy (fun i -> -teacher[i]) |> Array.truncate k
    s |> Array.sumBy (fun i -> p[i] * log (p[i] / q[i]))

let divergenceTests =
    testList "KL and JSD" [
        testProperty "forward KL equals the naive Σ p (log p − log q) from softmax (random and extreme logits, rel ≤ 1e-9 above the inputs' rounding floor)" <|
            Prop.forAll logitPairs (fun pair ->
                expectClose 1e-9 (floorOf pair) (divergenceOf (recipe Forward) pair.Teacher pair.Student) (Naive.forwardKl 1.0 pair.Teacher pair.Student) "forward KL")

        testProperty "reverse KL equals the naive Σ q (log q − log p) from softmax (random and extreme logits, rel ≤ 1e-9 above the inputs' rounding floor)" <|
            Prop.forAll logitPairs (fun pair ->
                expectClose 1e-9 (floorOf pair) (divergenceOf (recipe Reverse) pair.Teacher pair.Student) (Naive.reverseKl 1.0 pair.Teacher pair.Student) "reverse KL")

        testProperty "scaled JSD(β) equals the naive [β D(p‖M) + (1−β) D(q‖M)] / (β(1−β)) with M = βp + (1−β)q (rel ≤ 1e-9 above the inputs' rounding floor)" <|
            Prop.forAll (Arb.fromGen (Gen.zip logitPairGen (Gen.elements [ 0.05; 0.1; 0.3; 0.5; 0.7; 0.9; 0.95 ]))) (fun (pair, beta) ->
                expectClose 1e-9 (floorOf pair / (beta * (1.0 - beta))) (divergenceOf (recipe (Jsd beta)) pair.Teacher pair.Student) (Naive.jsd beta pair.Teacher pair.Student) $"JSD({beta})")

        testProperty "forward KL, reverse KL and JSD(β) for β in [0, 1] are non-negative (up to 1e-12 rounding)" <|
            Prop.forAll pairsWithBeta (fun (pair, beta) ->
                for d in [ Forward; Reverse; Jsd beta ] do
                    let v = divergenceOf (recipe d) pair.Teacher pair.Student
                    Expect.isGreaterThanOrEqual v -1e-12 $"{d} ≥ 0")

        testProperty "the divergences are positive when the two distributions differ (moderate logits, so that the difference is resolvable)" <|
            Prop.forAll (Arb.fromGen (Gen.zip moderatePairGen betaGen)) (fun (pair, beta) ->
                for d in [ Forward; Reverse; Jsd beta ] do
                    Expect.isGreaterThan (divergenceOf (recipe d) pair.Teacher pair.Student) 0.0 $"{d} > 0")

        testProperty "the divergences are 0 for equal logits (forward and reverse exactly, JSD within 1e-12)" <|
            Prop.forAll (Arb.fromGen (Gen.zip logitPairGen (Gen.elements [ 0.1; 0.5; 0.9 ]))) (fun (pair, beta) ->
                let z = pair.Teacher
                Expect.equal (divergenceOf (recipe Forward) z z) 0.0 "forward"
                Expect.equal (divergenceOf (recipe Reverse) z z) 0.0 "reverse"
                for b in [ 0.0; beta; 1.0 ] do
                    expectAbs 1e-12 (divergenceOf (recipe (Jsd b)) z z) 0.0 $"JSD({b})")

        testProperty "the divergences are 0 (within 1e-12) when the logits differ by a constant shift" <|
            Prop.forAll (Arb.fromGen (Gen.zip (logitPairGenWith 2 64 0) (Gen.elements [ -50.0; 7.5; 300.0 ]))) (fun (pair, c) ->
                let z = pair.Teacher
                let shifted = z |> Array.map ((+) c)
                for d in [ Forward; Reverse; Jsd 0.5 ] do
                    expectAbs 1e-12 (divergenceOf (recipe d) z shifted) 0.0 $"{d}, shift {c}"
                    expectAbs 1e-12 (divergenceOf (recipe d) shifted z) 0.0 $"{d}, shift {c}, swapped")

        testProperty "JSD at β = 0 equals forward KL and at β = 1 equals reverse KL" <|
            Prop.forAll logitPairs (fun pair ->
                let f = divergenceOf (recipe Forward) pair.Teacher pair.Student
                let r = divergenceOf (recipe Reverse) pair.Teacher pair.Student
                expectRel 1e-15 (divergenceOf (recipe (Jsd 0.0)) pair.Teacher pair.Student) f "β = 0"
                expectRel 1e-15 (divergenceOf (recipe (Jsd 1.0)) pair.Teacher pair.Student) r "β = 1")

        testProperty "JSD is continuous at the endpoints: β = 1e-6 ≈ forward KL, β = 1 − 1e-6 ≈ reverse KL (rel 1e-4)" <|
            Prop.forAll (Arb.fromGen (gen {
                let! seed = Gen.choose (0, Int32.MaxValue)
                let! v = Gen.choose (2, 64)
                return makeLogitPair seed v false 1.0 })) (fun pair ->
                let f = Naive.forwardKl 1.0 pair.Teacher pair.Student
                let r = Naive.reverseKl 1.0 pair.Teacher pair.Student
                expectRel 1e-4 (divergenceOf (recipe (Jsd 1e-6)) pair.Teacher pair.Student) f "β = 1e-6"
                expectRel 1e-4 (divergenceOf (recipe (Jsd (1.0 - 1e-6))) pair.Teacher pair.Student) r "β = 1 − 1e-6")

        testProperty "JSD_β(P, Q) = JSD_{1−β}(Q, P)" <|
            Prop.forAll pairsWithBeta (fun (pair, beta) ->
                let a = divergenceOf (recipe (Jsd beta)) pair.Teacher pair.Student
                let b = divergenceOf (recipe (Jsd (1.0 - beta))) pair.Student pair.Teacher
                expectClose 1e-10 (floorOf pair / max 1e-3 (beta * (1.0 - beta))) a b $"β = {beta}")

        testCase "JSD rejects β outside [0, 1]" <| fun () ->
            for b in [ -0.1; 1.1; nan ] do
                Expect.throwsT<ArgumentException> (fun () -> Divergence.jsd b [| -0.5; -1.0 |] [| -0.5; -1.0 |] |> ignore) $"β = {b}"

        testCase "two-point hand case: forward KL of (1/2, 1/2) vs (1/4, 3/4) is ½ ln(4/3)" <| fun () ->
            let teacher = [| 0.0; 0.0 |]
            let student = [| 0.0; log 3.0 |]
            expectRel 1e-14 (divergenceOf (recipe Forward) teacher student) (0.5 * log (4.0 / 3.0)) "forward"
            // reverse: ¼ ln(½) + ¾ ln(3/2)
            expectRel 1e-14 (divergenceOf (recipe Reverse) teacher student) (0.25 * log 0.5 + 0.75 * log 1.5) "reverse"

        testProperty "temperature T = 2 gives the KL of softmax(z/2) computed naively (applied once, not twice)" <|
            Prop.forAll ordinaryLogitPairs (fun pair ->
                let f2 = Recipes.forwardKl.WithTemperature 2.0
                let r2 = Recipes.reverseKl.WithTemperature 2.0
                let actualF = divergenceOf f2 pair.Teacher pair.Student
                // Near one-hot pairs have KL ~1e-8 built from log-probabilities near 0, known to ~1e-16
                // absolute: relative 1e-9 plus an absolute floor of 1e-13.
                let close (actual: float) (expected: float) what = expectAbs (1e-9 * abs expected + 1e-13) actual expected what
                close actualF (Naive.forwardKl 2.0 pair.Teacher pair.Student) "forward, T = 2"
                close (divergenceOf r2 pair.Teacher pair.Student) (Naive.reverseKl 2.0 pair.Teacher pair.Student) "reverse, T = 2"
                // applied twice would be the KL at T = 4
                let twice = Naive.forwardKl 4.0 pair.Teacher pair.Student
                Expect.isGreaterThan (relErr actualF twice) 1e-6 "not the KL of softmax(z/4)")

        testProperty "forwardKlGradient equals the central-difference gradient of the forward-KL recipe (h = 1e-5; rel 1e-6 + abs 1e-9)" <|
            Prop.forAll (Arb.fromGen (Gen.zip (Arb.toGen smallLogitPairs) temperatures)) (fun (pair, t) ->
                let analytic = Divergence.forwardKlGradient t pair.Teacher pair.Student
                let numeric = Objective.numericalGradient (Recipes.forwardKl.WithTemperature t) pair.Teacher pair.Student -1 1e-5
                expectVecClose 1e-6 1e-9 analytic numeric $"T = {t}")

        testProperty "reverseKlGradient equals the central-difference gradient of the reverse-KL recipe (h = 1e-5; rel 1e-6 + abs 1e-9)" <|
            Prop.forAll (Arb.fromGen (Gen.zip (Arb.toGen smallLogitPairs) temperatures)) (fun (pair, t) ->
                let analytic = Divergence.reverseKlGradient t pair.Teacher pair.Student
                let numeric = Objective.numericalGradient (Recipes.reverseKl.WithTemperature t) pair.Teacher pair.Student -1 1e-5
                expectVecClose 1e-6 1e-9 analytic numeric $"T = {t}")

        testProperty "forward- and reverse-KL logit gradients sum to 0 (shift invariance of softmax)" <|
            Prop.forAll ordinaryLogitPairs (fun pair ->
                expectAbs 1e-12 (Divergence.forwardKlGradient 1.0 pair.Teacher pair.Student |> Array.sum) 0.0 "forward"
                let g = Divergence.reverseKlGradient 1.0 pair.Teacher pair.Student
                let scale = g |> Array.fold (fun m x -> max m (abs x)) 1.0
                expectAbs (1e-12 * scale) (Array.sum g) 0.0 "reverse")
    ]

let supportTests =
    testList "Support" [
        for name, support in [ "teacher top-K", TeacherTopK; "teacher top-K + tail", TeacherTopKWithTail ] do
            testProperty $"forward and reverse KL with {name}, K = V, equal the full-vocabulary values" <|
                Prop.forAll logitPairs (fun pair ->
                    for d in [ Forward; Reverse; Jsd 0.5 ] do
                        let full = divergenceOf (recipe d) pair.Teacher pair.Student
                        let restricted = divergenceOf (withSupport (support pair.V) d) pair.Teacher pair.Student
                        expectClose 1e-10 (floorOf pair) restricted full $"{d}")

        testProperty "top-K + tail divergence is ≥ 0 for every K, forward and reverse (up to 1e-12 rounding)" <|
            Prop.forAll pairsWithK (fun (pair, k) ->
                for d in [ Forward; Reverse ] do
                    let v = divergenceOf (withSupport (TeacherTopKWithTail k) d) pair.Teacher pair.Student
                    Expect.isGreaterThanOrEqual v -1e-12 $"{d}, K = {k}")

        testProperty "top-K + tail divergence never exceeds the full-vocabulary divergence (data processing)" <|
            Prop.forAll pairsWithK (fun (pair, k) ->
                for d in [ Forward; Reverse ] do
                    let full = divergenceOf (recipe d) pair.Teacher pair.Student
                    let tail = divergenceOf (withSupport (TeacherTopKWithTail k) d) pair.Teacher pair.Student
                    Expect.isTrue (Double.IsFinite tail) $"{d}, K = {k}: finite ({tail})"
                    Expect.isLessThanOrEqual tail (full + 1e-10 * abs full + floorOf pair) $"{d}, K = {k}: {tail} ≤ {full}")

        testProperty "top-K + tail equals the KL between the (K + 1)-bucket coarse-grainings computed naively" <|
            Prop.forAll pairsWithK (fun (pair, k) ->
                let p, q = Naive.softmax pair.Teacher, Naive.softmax pair.Student
                let s = Array.init pair.V id |> Array.sortBy (fun i -> -pair.Teacher[i], i) |> Array.truncate k
                let inS = Set.ofArray s
                let rest (x: float[]) = [| for i in 0 .. pair.V - 1 do if not (inS.Contains i) then x[i] |] |> Array.sum
                let bucketP = Array.append (s |> Array.map (fun i -> p[i])) [| rest p |]
                let bucketQ = Array.append (s |> Array.map (fun i -> q[i])) [| rest q |]
                // only where no probability underflows, so that the naive logs are meaningful
                if Array.forall (fun x -> x > 1e-300) bucketQ && Array.forall (fun x -> x > 1e-300) bucketP || k = pair.V then
                    let f = divergenceOf (withSupport (TeacherTopKWithTail k) Forward) pair.Teacher pair.Student
                    expectClose 1e-8 1e-13 f (Naive.klProbs bucketP bucketQ) $"forward, K = {k}"
                    let r = divergenceOf (withSupport (TeacherTopKWithTail k) Reverse) pair.Teacher pair.Student
                    expectClose 1e-8 1e-13 r (Naive.klProbs bucketQ bucketP) $"reverse, K = {k}")

        testCase "the un-renormalised top-K sum is negative on a constructed example; the tail version is ≥ 0 and equals it plus the tail term" <| fun () ->
            // p = (0.5, 0.3, 0.2) teacher, q = (0.9, 0.05, 0.05) student, K = 1: S = {0}.
            let p = [| 0.5; 0.3; 0.2 |]
            let q = [| 0.9; 0.05; 0.05 |]
            let teacher, student = Array.map log p, Array.map log q
            let naive = naiveTopKSum 1 teacher student
            expectRel 1e-14 naive (0.5 * log (0.5 / 0.9)) "naive top-1 sum by hand"
            Expect.isLessThan naive 0.0 "the naive top-K sum is negative"
            let tailTerm = 0.5 * log (0.5 / 0.1) // teacher tail 0.5, student tail 0.1
            let withTail = divergenceOf (withSupport (TeacherTopKWithTail 1) Forward) teacher student
            Expect.isGreaterThanOrEqual withTail 0.0 "top-K + tail ≥ 0"
            expectRel 1e-14 withTail (naive + tailTerm) "top-K + tail = naive sum + tail bucket term"
            expectRel 1e-14 withTail (0.5 * log (25.0 / 9.0)) "by hand: ½ ln(5/9) + ½ ln 5"

        testCase "teacher top-K renormalises both sides on the teacher's top-K (hand case)" <| fun () ->
            // teacher prefers 0, 1; the student prefers 3, 2. Support = {0, 1}.
            let teacher = [| 3.0; 2.0; 1.0; 0.0 |]
            let student = [| 0.0; 1.0; 2.0; 3.0 |]
            let p0 = exp 3.0 / (exp 3.0 + exp 2.0)
            let q0 = 1.0 / (1.0 + exp 1.0)
            let expected = p0 * log (p0 / q0) + (1.0 - p0) * log ((1.0 - p0) / (1.0 - q0))
            expectRel 1e-13 (divergenceOf (withSupport (TeacherTopK 2) Forward) teacher student) expected "forward top-2"

        testCase "K < 1 or K > V raises ArgumentException" <| fun () ->
            let t = [| 0.0; 1.0; 2.0 |]
            for s in [ TeacherTopK 0; TeacherTopK 4; TeacherTopKWithTail 0; TeacherTopKWithTail 4; TeacherTopK -3 ] do
                Expect.throwsT<ArgumentException> (fun () -> Support.check s 3) $"check {s}"
                Expect.throwsT<ArgumentException> (fun () -> Support.restrict s t t |> ignore) $"restrict {s}"
                Expect.throwsT<ArgumentException> (fun () -> divergenceOf (withSupport s Reverse) t t |> ignore) $"position {s}"

        testCase "topKIndices returns the largest first and breaks ties toward the lower index" <| fun () ->
            let xs = [| 1.0; 3.0; 3.0; 2.0; 3.0; ninf |]
            Expect.equal (Support.topKIndices 2 xs) [| 1; 2 |] "top-2"
            Expect.equal (Support.topKIndices 4 xs) [| 1; 2; 4; 3 |] "top-4"
            Expect.equal (Support.topKIndices 6 xs) [| 1; 2; 4; 3; 0; 5 |] "all"
            Expect.equal (Support.topKIndices 3 (Array.zeroCreate 5)) [| 0; 1; 2 |] "all tied"
    ]

let estimatorTests =
    testList "Estimator" [
        testCase "k1 = δ, k2 = δ²/2, k3 = (e^−δ − 1) + δ on given δ" <| fun () ->
            for delta in [ -3.0; -0.5; 0.0; 0.3; 1.0; 5.0 ] do
                Expect.equal (Estimator.fromLogRatio K1 delta) delta $"k1({delta})"
                expectRel 1e-15 (Estimator.fromLogRatio K2 delta) (delta * delta / 2.0) $"k2({delta})"
                // r = e^−δ: (r − 1) − log r
                let r = exp (-delta)
                expectRel 1e-13 (Estimator.fromLogRatio K3 delta) ((r - 1.0) - log r) $"k3({delta})"

        testCase "k3 at small δ matches δ²/2 − δ³/6 + δ⁴/24" <| fun () ->
            for delta in [ 1e-3; -1e-3; 1e-4 ] do
                let expected = delta * delta / 2.0 - delta ** 3.0 / 6.0 + delta ** 4.0 / 24.0 - delta ** 5.0 / 120.0
                expectRel 1e-10 (Estimator.fromLogRatio K3 delta) expected $"k3({delta})"

        testProperty "k2 ≥ 0 and k3 ≥ 0 for every δ" <|
            Prop.forAll (Arb.fromGen (gen {
                let! e = Gen.choose (-1800, 150)
                let! sign = Gen.elements [ -1.0; 1.0 ]
                return sign * 10.0 ** (float e / 100.0) })) (fun delta ->
                Expect.isGreaterThanOrEqual (Estimator.fromLogRatio K2 delta) 0.0 $"k2({delta})"
                Expect.isGreaterThanOrEqual (Estimator.fromLogRatio K3 delta) 0.0 $"k3({delta})")

        testProperty "E_{y~q}[k1] and E_{y~q}[k3] by exact enumeration equal reverse KL(q ‖ p) (1e-12)" <|
            Prop.forAll smallLogitPairs (fun pair ->
                let q = Naive.softmax pair.Student
                let expectation (est: Estimator) =
                    let r = Recipes.reverseKl.WithEstimator est
                    Array.init pair.V (fun y -> q[y] * (Objective.position r pair.Teacher pair.Student y).Divergence) |> Array.sum
                let kl = Naive.reverseKl 1.0 pair.Teacher pair.Student
                expectAbs (1e-12 * max 1.0 kl) (expectation K1) kl "E[k1]"
                expectAbs (1e-12 * max 1.0 kl) (expectation K3) kl "E[k3]")

        testCase "k2 is biased: E_{y~q}[k2] differs from reverse KL on a hand example" <| fun () ->
            // q = (1/2, 1/2), p = (1/4, 3/4): δ = (ln 2, ln(2/3)).
            let teacher, student = [| log 0.25; log 0.75 |], [| 0.0; 0.0 |]
            let r = Recipes.reverseKl.WithEstimator K2
            let e = 0.5 * (Objective.position r teacher student 0).Divergence + 0.5 * (Objective.position r teacher student 1).Divergence
            let byHand = 0.5 * (0.5 * log 2.0 ** 2.0) + 0.5 * (0.5 * log (2.0 / 3.0) ** 2.0)
            expectRel 1e-14 e byHand "E[k2] by hand"
            let kl = 0.5 * log 2.0 + 0.5 * log (2.0 / 3.0)
            Expect.isGreaterThan (abs (e - kl)) 1e-3 "E[k2] ≠ KL"

        testCase "the exact estimator has no single-token form; sampled estimators need a target" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Estimator.fromLogRatio Exact 0.1 |> ignore) "Exact"
            let r = Recipes.reverseKl.WithEstimator K3
            for target in [ -1; 2 ] do
                Expect.throwsT<ArgumentException> (fun () -> Objective.position r [| 0.0; 1.0 |] [| 1.0; 0.0 |] target |> ignore) $"target {target}"
    ]

[<Tests>]
let tests = testList "Divergence" [ divergenceTests; supportTests; estimatorTests ]
