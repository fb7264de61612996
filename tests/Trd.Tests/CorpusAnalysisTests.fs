module Trd.Tests.CorpusAnalysisTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Trd.Core
open Trd.Tests.Generators

let private outcome id rollout refined = { Id = id; RolloutCorrect = rollout; RefinedCorrect = refined }

/// p1 pass→pass, p2 pass→fail, p3 fail→pass, p4 fail→fail, p5 fail→pass, p6 pass→pass.
let private hand =
    [| outcome "p1" true true; outcome "p2" true false; outcome "p3" false true
       outcome "p4" false false; outcome "p5" false true; outcome "p6" true true |]

let private corpora =
    gen {
        let! n = Gen.choose (0, 60)
        let! flags = Gen.arrayOfLength n (Gen.zip (Gen.elements [ true; false ]) (Gen.elements [ true; false ]))
        return flags |> Array.mapi (fun i (o, r) -> outcome $"q{i}" o r)
    }
    |> Arb.fromGen

let private lengthArrays =
    gen {
        let! n = Gen.choose (1, 80)
        let! scale = Gen.elements [ 1; 10; 40_000 ]
        return! Gen.arrayOfLength n (Gen.choose (0, scale))
    }
    |> Arb.fromGen

/// NumPy's linear percentile, written from its definition: sort, rank q (n − 1), interpolate.
let private naivePercentile (xs: int[]) (q: float) =
    let s = xs |> Array.map float |> Array.sort
    let rank = q * float (s.Length - 1)
    let lo = Math.Floor rank
    let hi = Math.Ceiling rank
    s[int lo] + (rank - lo) * (s[int hi] - s[int lo])

[<Tests>]
let tests =
    testList "CorpusAnalysis" [
        testCase "joint counts the 2 × 2 outcomes of y_o then y_r" <| fun () ->
            let j = CorpusAnalysis.joint hand
            Expect.equal j { PassPass = 2; PassFail = 1; FailPass = 2; FailFail = 1 } "joint"
            Expect.equal j.Total 6 "total"
            Expect.equal (CorpusAnalysis.joint [||]).Total 0 "empty corpus"

        testCase "accuracy is the fraction of passes; empty raises" <| fun () ->
            Expect.equal (CorpusAnalysis.accuracy [| true; false; true; true |]) 0.75 "3 of 4"
            Expect.equal (CorpusAnalysis.accuracy [| false |]) 0.0 "none"
            Expect.throwsT<ArgumentException> (fun () -> CorpusAnalysis.accuracy [||] |> ignore) "empty"

        testCase "summarise 1 … 10 on hand values (NumPy: percentile 10 = 1.9, 90 = 9.1)" <| fun () ->
            let s = CorpusAnalysis.summarise [| 7; 1; 10; 2; 9; 3; 8; 4; 6; 5 |]
            Expect.equal (s.Count, s.Min, s.Max) (10, 1, 10) "count, min, max"
            expectRel 1e-15 s.Mean 5.5 "mean"
            expectRel 1e-15 s.Std (sqrt 8.25) "population std"
            expectRel 1e-15 s.P10 1.9 "P10"
            expectRel 1e-15 s.Median 5.5 "median"
            expectRel 1e-15 s.P90 9.1 "P90"

        testCase "summarise one length and an odd count" <| fun () ->
            Expect.equal (CorpusAnalysis.summarise [| 7 |]) { Count = 1; Mean = 7.0; Std = 0.0; Min = 7; P10 = 7.0; Median = 7.0; P90 = 7.0; Max = 7 } "one"
            Expect.equal (CorpusAnalysis.summarise [| 5; 1; 3 |]).Median 3.0 "median of three"
            Expect.throwsT<ArgumentException> (fun () -> CorpusAnalysis.summarise [||] |> ignore) "empty"
            Expect.throwsT<ArgumentException> (fun () -> CorpusAnalysis.summarise [| 3; -1 |] |> ignore) "negative"

        testProperty "summarise agrees with naive mean, std and NumPy-style percentiles" <|
            Prop.forAll lengthArrays (fun xs ->
                let s = CorpusAnalysis.summarise xs
                let mean = (xs |> Array.sumBy float) / float xs.Length
                expectRel 1e-12 s.Mean mean "mean"
                expectAbs (1e-9 * (1.0 + mean)) s.Std (sqrt ((xs |> Array.sumBy (fun x -> (float x - mean) ** 2.0)) / float xs.Length)) "std"
                expectRel 1e-12 s.P10 (naivePercentile xs 0.1) "P10"
                expectRel 1e-12 s.Median (naivePercentile xs 0.5) "median"
                expectRel 1e-12 s.P90 (naivePercentile xs 0.9) "P90"
                Expect.isTrue (float s.Min <= s.P10 && s.P10 <= s.Median && s.Median <= s.P90 && s.P90 <= float s.Max) "ordered"
                Expect.equal (CorpusAnalysis.quantile xs 0.5) s.Median "quantile 0.5")

        testCase "histogram matches numpy.histogram on hand cases" <| fun () ->
            // np.histogram([1, 2, 2, 3, 4], 3) → ([1, 2, 2], [1, 2, 3, 4])
            Expect.equal (CorpusAnalysis.histogram [| 1; 2; 2; 3; 4 |] 3) { Edges = [| 1.0; 2.0; 3.0; 4.0 |]; Counts = [| 1; 2; 2 |] } "1 2 2 3 4"
            // np.histogram([5, 5], 2) → ([0, 2], [4.5, 5, 5.5])
            Expect.equal (CorpusAnalysis.histogram [| 5; 5 |] 2) { Edges = [| 4.5; 5.0; 5.5 |]; Counts = [| 0; 2 |] } "all equal"
            // np.histogram([], 2) → ([0, 0], [0, 0.5, 1])
            Expect.equal (CorpusAnalysis.histogram [||] 2) { Edges = [| 0.0; 0.5; 1.0 |]; Counts = [| 0; 0 |] } "empty"
            // np.histogram([0, 10], 1) → ([2], [0, 10])
            Expect.equal (CorpusAnalysis.histogram [| 0; 10 |] 1) { Edges = [| 0.0; 10.0 |]; Counts = [| 2 |] } "one bin"
            Expect.throwsT<ArgumentException> (fun () -> CorpusAnalysis.histogram [| 1 |] 0 |> ignore) "no bins"

        testProperty "histogram counts every length once, in the bin whose edges hold it" <|
            Prop.forAll (Arb.fromGen (Gen.zip lengthArrays.Generator (Gen.choose (1, 40)))) (fun (xs, bins) ->
                let h = CorpusAnalysis.histogram xs bins
                Expect.equal h.Edges.Length (bins + 1) "edges"
                Expect.equal h.Counts.Length bins "counts"
                Expect.equal (Array.sum h.Counts) xs.Length "every length counted"
                for i in 1 .. bins do
                    Expect.isGreaterThan h.Edges[i] h.Edges[i - 1] "increasing edges"
                let naive =
                    Array.init bins (fun b ->
                        xs |> Array.filter (fun x -> float x >= h.Edges[b] && (float x < h.Edges[b + 1] || (b = bins - 1 && float x <= h.Edges[b + 1]))) |> Array.length)
                Expect.equal h.Counts naive "counts by edges")

        testCase "splitLengths separates the correct and incorrect halves" <| fun () ->
            Expect.equal (CorpusAnalysis.splitLengths [| 10; 20; 30; 40 |] [| true; false; false; true |]) { Correct = [| 10; 40 |]; Incorrect = [| 20; 30 |] } "split"
            Expect.throwsT<ArgumentException> (fun () -> CorpusAnalysis.splitLengths [| 1 |] [||] |> ignore) "length mismatch"

        testCase "select keeps the ids of App. B.3's filters, in corpus order" <| fun () ->
            Expect.equal (CorpusAnalysis.select All hand) [| "p1"; "p2"; "p3"; "p4"; "p5"; "p6" |] "all"
            Expect.equal (CorpusAnalysis.select Fail hand) [| "p3"; "p4"; "p5" |] "fail: y_o incorrect"
            Expect.equal (CorpusAnalysis.select Succ hand) [| "p1"; "p2"; "p6" |] "succ: y_o correct"
            Expect.equal (CorpusAnalysis.select FailToSucc hand) [| "p3"; "p5" |] "fail → succ: y_o incorrect, y_r correct"

        testCase "on a corpus with the paper's counts the filters keep n = 40,245 / 12,318 / 27,927 / 4,372" <| fun () ->
            // fail = 12,318 of which 4,372 recover; succ = 27,927 of which (say) 150 regress
            let corpus =
                [| for i in 0 .. 4_371 -> outcome $"fp{i}" false true
                   for i in 0 .. 12_318 - 4_372 - 1 -> outcome $"ff{i}" false false
                   for i in 0 .. 149 -> outcome $"pf{i}" true false
                   for i in 0 .. 27_927 - 150 - 1 -> outcome $"pp{i}" true true |]
            let sizes = CorpusAnalysis.filters |> Array.map (fun f -> CorpusAnalysis.select f corpus |> Array.length)
            Expect.equal sizes [| 40_245; 12_318; 27_927; 4_372 |] "all, fail, succ, fail → succ"
            let j = CorpusAnalysis.joint corpus
            Expect.equal j.FailPass 4_372 "fail → pass cell"
            expectRel 1e-15 (CorpusAnalysis.accuracy (corpus |> Array.map (fun o -> o.RolloutCorrect))) (27_927.0 / 40_245.0) "y_o accuracy"

        testProperty "fail and succ partition the corpus; fail → succ is the fail → pass cell inside fail" <|
            Prop.forAll corpora (fun corpus ->
                let all, fail, succ, fts = (CorpusAnalysis.select All corpus), (CorpusAnalysis.select Fail corpus), (CorpusAnalysis.select Succ corpus), (CorpusAnalysis.select FailToSucc corpus)
                Expect.equal (Set.ofArray fail + Set.ofArray succ) (Set.ofArray all) "fail ∪ succ = all"
                Expect.isEmpty (Set.intersect (Set.ofArray fail) (Set.ofArray succ)) "fail ∩ succ = ∅"
                Expect.isTrue (Set.isSubset (Set.ofArray fts) (Set.ofArray fail)) "fail → succ ⊆ fail"
                let j = CorpusAnalysis.joint corpus
                Expect.equal fts.Length j.FailPass "|fail → succ| = fail → pass"
                Expect.equal fail.Length (j.FailPass + j.FailFail) "|fail|"
                Expect.equal succ.Length (j.PassPass + j.PassFail) "|succ|"
                Expect.equal all (corpus |> Array.map (fun o -> o.Id)) "all keeps the order")

        testCase "filter names round-trip and parse case-insensitively" <| fun () ->
            for f in CorpusAnalysis.filters do
                Expect.equal (CorpusAnalysis.parseFilter (CorpusAnalysis.filterName f)) f (CorpusAnalysis.filterName f)
            Expect.equal (CorpusAnalysis.filters |> Array.map CorpusAnalysis.filterName) [| "all"; "fail"; "succ"; "fail-to-succ" |] "names"
            Expect.equal (CorpusAnalysis.parseFilter " Fail-To-Succ ") FailToSucc "case and spaces"
            Expect.equal (CorpusAnalysis.parseFilter "SUCC") Succ "upper case"

        testCase "an unknown filter name raises with the valid names listed" <| fun () ->
            for bad in [ "failtosucc"; "pass"; ""; "fail→succ" ] do
                let e = Expect.throwsC (fun () -> CorpusAnalysis.parseFilter bad |> ignore) id
                Expect.isTrue (e :? ArgumentException) "ArgumentException"
                for name in [ "\"all\""; "\"fail\""; "\"succ\""; "\"fail-to-succ\"" ] do
                    Expect.stringContains e.Message name $"{bad}: lists {name}"
    ]
