module Trd.Tests.MixtureTests

open System
open Expecto
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

// The bimodal teacher of §4.1 on V = 10: a wrong-continuation mode on W = {0, 1}, a correction-onset
// mode on C = {2, 3}, the student anchored on W.
let private v = 10
let private wTokens, cTokens = [| 0; 1 |], [| 2; 3 |]
let private otherTokens = [| 4 .. 9 |]
let private regions =
    [| { Name = "wrong continuation"; Tokens = wTokens }
       { Name = "correction onset"; Tokens = cTokens }
       { Name = "other"; Tokens = otherTokens } |]
let private wrongMode = Mixture.concentrated v wTokens 0.9
let private correctionMode = Mixture.concentrated v cTokens 0.9
let private student = Mixture.concentrated v wTokens 0.95
let private weights = [| 0.1; 0.2; 0.5; 0.8 |]

let private region (name: string) (rs: RegionContribution[]) = rs |> Array.find (fun r -> r.Region = name)

/// Σ_{v∈R} a(v) log(a(v)/b(v)), written out.
let private regionKl (a: float[]) (b: float[]) (tokens: int[]) = tokens |> Array.sumBy (fun i -> a[i] * log (a[i] / b[i]))

[<Tests>]
let tests =
    testList "Mixture" [
        testCase "concentrated puts `mass` uniformly on the region and the rest uniformly elsewhere" <| fun () ->
            let p = Mixture.concentrated 5 [| 1; 3 |] 0.8
            expectVecRel 1e-15 p [| 0.2 / 3.0; 0.4; 0.2 / 3.0; 0.4; 0.2 / 3.0 |] "by hand"
            expectAbs 1e-15 (Array.sum p) 1.0 "a distribution"

        testCase "mix is (1 − w)·wrong + w·correction" <| fun () ->
            let m = Mixture.mix 0.25 [| 1.0; 0.0 |] [| 0.0; 1.0 |]
            Expect.equal m [| 0.75; 0.25 |] "w = 0.25"

        testCase "region contributions equal the region sums of p log(p/q) and q log(q/p) written out" <| fun () ->
            for w in weights do
                let teacher = Mixture.mix w wrongMode correctionMode
                let rs = Mixture.contributions teacher student regions
                let totalF, totalR = Naive.klProbs teacher student, Naive.klProbs student teacher
                for r in regions do
                    let c = region r.Name rs
                    expectRel 1e-12 c.Forward (regionKl teacher student r.Tokens) $"forward, {r.Name}, w = {w}"
                    expectRel 1e-12 c.Reverse (regionKl student teacher r.Tokens) $"reverse, {r.Name}, w = {w}"
                    expectRel 1e-12 c.ForwardShare (c.Forward / totalF) "forward share"
                    expectRel 1e-12 c.ReverseShare (c.Reverse / totalR) "reverse share"

        testCase "forward KL is carried by the correction-onset region: majority share, contribution growing with w" <| fun () ->
            let points = Mixture.sweep weights wrongMode correctionMode student regions
            for p in points do
                let c = region "correction onset" p.Regions
                Expect.isGreaterThan c.ForwardShare 0.5 $"w = {p.Weight}: C's forward share {c.ForwardShare} is the majority"
                let w = region "wrong continuation" p.Regions
                Expect.isGreaterThan c.ForwardShare w.ForwardShare $"w = {p.Weight}: C carries more forward KL than W"
            let cForward = points |> Array.map (fun p -> (region "correction onset" p.Regions).Forward)
            for i in 1 .. cForward.Length - 1 do
                Expect.isGreaterThan cForward[i] cForward[i - 1] $"C's forward contribution grows from w = {weights[i - 1]} to {weights[i]}"

        testCase "reverse KL is carried by the wrong-continuation region: majority share at every w" <| fun () ->
            for p in Mixture.sweep weights wrongMode correctionMode student regions do
                let w = region "wrong continuation" p.Regions
                let c = region "correction onset" p.Regions
                Expect.isGreaterThan w.ReverseShare 0.5 $"w = {p.Weight}: W's reverse share {w.ReverseShare} is the majority"
                Expect.isLessThan c.ReverseShare c.ForwardShare $"w = {p.Weight}: C weighs less in reverse than in forward KL"
                Expect.isLessThan c.ReverseShare 0.5 $"w = {p.Weight}: C is not the majority of reverse KL"

        testCase "sweep reports the forward and reverse KL of each mixture" <| fun () ->
            for p in Mixture.sweep weights wrongMode correctionMode student regions do
                let teacher = Mixture.mix p.Weight wrongMode correctionMode
                expectRel 1e-12 p.ForwardKl (Naive.klProbs teacher student) $"forward at w = {p.Weight}"
                expectRel 1e-12 p.ReverseKl (Naive.klProbs student teacher) $"reverse at w = {p.Weight}"

        testProperty "region shares over a partition sum to 1 (forward and reverse)" <|
            Prop.forAll (Arb.fromGen (Gen.zip (logitPairGenWith 2 64 0) (Gen.choose (1, 4)))) (fun (pair, parts) ->
                let teacher, studentP = Naive.softmax pair.Teacher, Naive.softmax pair.Student
                // renormalise exactly enough for the 1e-9 sum check of contributions
                let norm (x: float[]) = let s = Array.sum x in x |> Array.map (fun y -> y / s)
                let teacher, studentP = norm teacher, norm studentP
                let rng = Random(pair.V * 7919 + parts)
                let owner = Array.init pair.V (fun _ -> rng.Next parts)
                let partition = Array.init parts (fun r -> { Name = $"R{r}"; Tokens = Array.init pair.V id |> Array.filter (fun i -> owner[i] = r) })
                let rs = Mixture.contributions teacher studentP partition
                expectAbs 1e-9 (rs |> Array.sumBy (fun r -> r.ForwardShare)) 1.0 "Σ forward shares"
                expectAbs 1e-9 (rs |> Array.sumBy (fun r -> r.ReverseShare)) 1.0 "Σ reverse shares")

        testCase "mix rejects w outside [0, 1]" <| fun () ->
            for w in [ -0.1; 1.1; nan ] do
                Expect.throwsT<ArgumentException> (fun () -> Mixture.mix w wrongMode correctionMode |> ignore) $"w = {w}"

        testCase "contributions reject inputs that are not distributions; concentrated rejects bad regions" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Mixture.contributions [| 0.5; 0.6 |] [| 0.5; 0.5 |] [||] |> ignore) "sum ≠ 1"
            Expect.throwsT<ArgumentException> (fun () -> Mixture.contributions [| 1.5; -0.5 |] [| 0.5; 0.5 |] [||] |> ignore) "negative"
            Expect.throwsT<ArgumentException> (fun () -> Mixture.concentrated 3 [||] 0.5 |> ignore) "empty region"
            Expect.throwsT<ArgumentException> (fun () -> Mixture.concentrated 3 [| 0; 1; 2 |] 0.5 |> ignore) "whole vocabulary"
            Expect.throwsT<ArgumentException> (fun () -> Mixture.concentrated 3 [| 0 |] 1.5 |> ignore) "mass > 1"
    ]
