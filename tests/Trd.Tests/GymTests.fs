/// The prefix-failure gym: the running-sums generator, its verifier behaviour under slips, the splits, and the gym
/// vocabulary (docs/gym.md).
module Trd.Tests.GymTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Trd.Core
open Trd.Runtime.Gym

/// A problem drawn from a random seed at a random level (2–9 terms).
let private problems =
    gen {
        let! seed = ArbMap.defaults |> ArbMap.generate<uint64>
        let! lo = Gen.choose (2, 9)
        let! hi = Gen.choose (lo, 9)
        return seed, Gym.drawTerms (Gym.Rng seed) { MinTerms = lo; MaxTerms = hi }
    }
    |> Arb.fromGen

/// A problem with slips drawn at a high rate, so most draws have one or more.
let private slipped =
    gen {
        let! seed, terms = problems.Generator
        let! rate = Gen.elements [ 0.2; 0.5; 1.0 ]
        let! carry = Gen.elements [ 0.0; 0.5; 1.0 ]
        let rng = Gym.Rng(seed + 1UL)
        return terms, Gym.drawSlips rng terms rate carry
    }
    |> Arb.fromGen

let private config = { FsCheckConfig.defaultConfig with maxTest = 300 }

[<Tests>]
let tests =
    testList "Gym" [
        testCase "configs/gym-corpus.jsonl and gym-heldout.jsonl are the default study plan's problems" <| fun () ->
            let shipped name = IO.File.ReadAllText(IO.Path.Combine(TestData.repositoryRoot, "configs", name))
            Expect.equal (shipped "gym-corpus.jsonl") (Trd.Runtime.Study.GymStudy.ProblemsJsonl(GymSplit.Corpus, 192)) "the corpus split, 192 problems"
            Expect.equal (shipped "gym-heldout.jsonl") (Trd.Runtime.Study.GymStudy.ProblemsJsonl(GymSplit.Heldout, 64)) "the held-out split, 64 problems"

        testCase "model seeds: seed 1 is the recipe itself; seed m moves every seed of the init_from chain and keeps shared phases shared" <| fun () ->
            let student, teacher = Trd.Runtime.Gym.GymModels.Student, Trd.Runtime.Gym.GymModels.Teacher
            Expect.equal (student.WithModelSeed(1).Key) student.Key "model seed 1: the student's own key"
            Expect.equal (teacher.WithModelSeed(1).Key) teacher.Key "model seed 1: the teacher's own key"
            let s2, t2 = student.WithModelSeed 2, teacher.WithModelSeed 2
            Expect.notEqual s2.Key student.Key "another student"
            Expect.equal s2.Seed (student.Seed + 1000L) "the student's seed"
            Expect.equal s2.InitFrom.Seed (student.InitFrom.Seed + 1000L) "its first phase's seed"
            Expect.equal t2.InitFrom.InitFrom.Key s2.InitFrom.Key "the teacher still starts from the student's first phase"
            Expect.notEqual (student.WithModelSeed 3).Key s2.Key "model seeds 2 and 3 differ"
            Expect.equal (Trd.Runtime.Study.StudyUnit(2, 3L)).Folder "model-2/seed-3" "unit folder"
            Expect.equal (Trd.Runtime.Study.StudyUnit(1, 3L)).Folder "seed-3" "model seed 1 keeps the old layout"

        testCase "a problem reads as a question, a step-by-step y* and a boxed answer" <| fun () ->
            let terms = [| 7; 3; 8; 5 |]
            Expect.equal (Gym.question terms) "Add 7 3 8 5." "question"
            Expect.equal (Gym.solution terms) "7+3=10\n10+8=18\n18+5=23\n\\boxed{23}" "y*"
            Expect.equal (Gym.answer terms) "23" "answer"
            Expect.equal (Gym.partialSums terms) [| 10; 18; 23 |] "running sums"

        testCase "a carried slip writes every later sum from the wrong one; a fixed slip is followed by Wait and the right sum" <| fun () ->
            let terms = [| 7; 3; 8; 5 |]
            Expect.equal (Gym.withSlips terms [| { Step = 0; Delta = 1; Mode = Carry } |])
                "7+3=11\n11+8=19\n19+5=24\n\\boxed{24}" "carried"
            Expect.equal (Gym.withSlips terms [| { Step = 1; Delta = -10; Mode = Fix } |])
                "7+3=10\n10+8=8\nWait, 10+8=18\n18+5=23\n\\boxed{23}" "fixed"

        testPropertyWithConfig config "every y* verifies and has no first error" <|
            Prop.forAll problems (fun (_, terms) ->
                Verifier.verify (Gym.solution terms) (Gym.answer terms) && not (Gym.firstError terms (Gym.solution terms)).HasValue)

        testPropertyWithConfig config "a slipped solution fails the verifier exactly when its carried slips do not cancel; fixed slips alone pass" <|
            Prop.forAll slipped (fun (terms, slips) ->
                let text = Gym.withSlips terms slips
                let carried = slips |> Array.sumBy (fun s -> if s.Mode = Carry then s.Delta else 0)
                let passes = Verifier.verify text (Gym.answer terms)
                (passes = (carried = 0))
                |> Prop.label $"{text} (carried deltas sum to {carried}, verifier says {passes})")

        testPropertyWithConfig config "the first error is the first slip's line" <|
            Prop.forAll slipped (fun (terms, slips) ->
                let first = Gym.firstError terms (Gym.withSlips terms slips)
                match slips with
                | [||] -> not first.HasValue
                | _ -> first.HasValue && first.Value = (slips |> Array.minBy _.Step).Step)

        testPropertyWithConfig config "a truncated attempt is a line prefix of the full one and its first error is never past its end" <|
            Prop.forAll problems (fun (seed, terms) ->
                let full = Gym.drawAttempt (Gym.Rng seed) terms 0.3 0.5 0.0
                let cut = Gym.drawAttempt (Gym.Rng seed) terms 0.3 0.5 1.0
                let lines = cut.Split('\n')
                let first = Gym.firstError terms cut
                full.StartsWith(cut) && full.Split('\n')[.. lines.Length - 1] = lines
                && (not first.HasValue || first.Value < lines.Length))

        testCase "an unfinished last line that starts y*'s line is not an error; a longer solution is" <| fun () ->
            let terms = [| 7; 3; 8 |]
            Expect.equal (Gym.firstError terms "7+3=10\n10+") (Nullable()) "prefix of the line"
            Expect.equal (Gym.firstError terms "7+3=10\n10+8=19") (Nullable 1) "wrong sum"
            Expect.equal (Gym.firstError terms (Gym.solution terms + "\nmore")) (Nullable 3) "past the end"

        testCase "bad slips are refused with the step named" <| fun () ->
            let terms = [| 7; 3; 8 |]
            Expect.throwsT<ArgumentException> (fun () -> Gym.withSlips terms [| { Step = 2; Delta = 1; Mode = Carry } |] |> ignore) "out of range"
            Expect.throwsT<ArgumentException> (fun () -> Gym.withSlips terms [| { Step = 0; Delta = 0; Mode = Carry } |] |> ignore) "delta 0"
            Expect.throwsT<ArgumentException> (fun () ->
                Gym.withSlips terms [| { Step = 0; Delta = 1; Mode = Carry }; { Step = 0; Delta = 2; Mode = Fix } |] |> ignore) "two at one step"
            Expect.throwsT<ArgumentException> (fun () -> Gym.question [| 7 |] |> ignore) "one term"

        testCase "held-out, corpus and pretraining problems are disjoint, distinct, of their split and reproducible" <| fun () ->
            let level = Gym.defaultLevel
            let heldout = Gym.problems 202UL level Heldout 200 "heldout"
            let corpus = Gym.problems 101UL level Corpus 400 "corpus"
            let key (p: GymProblem) = String.Join(" ", p.Terms)
            Expect.equal (heldout |> Array.distinctBy key).Length 200 "held-out problems are distinct"
            Expect.equal (corpus |> Array.distinctBy key).Length 400 "corpus problems are distinct"
            Expect.isEmpty (Set.intersect (set (Array.map key heldout)) (set (Array.map key corpus))) "held-out ∩ corpus"
            Expect.all heldout (fun p -> Gym.split p.Terms = Heldout) "every held-out problem hashes to the held-out split"
            Expect.all corpus (fun p -> Gym.split p.Terms = Corpus) "every corpus problem hashes to the corpus split"
            Expect.equal (Gym.problems 202UL level Heldout 200 "heldout") heldout "same seed, same problems"
            Expect.equal (heldout |> Array.map _.Id) [| for i in 0..199 -> $"heldout-{i}" |] "ids"
            let rng = Gym.Rng 5UL
            Expect.all [ for _ in 1..500 -> Gym.drawFrom rng level Pretraining ] (fun t -> Gym.split t = Pretraining) "pretraining draws"

        testCase "asking for more problems than a split holds is refused" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> Gym.problems 1UL { MinTerms = 2; MaxTerms = 2 } Heldout 50 "h" |> ignore) "tiny split"

        testCase "the splits hold about 1/8, 1/8 and 3/4 of problems" <| fun () ->
            let rng = Gym.Rng 9UL
            let draws = [| for _ in 1..8000 -> Gym.split (Gym.drawTerms rng Gym.defaultLevel) |]
            let share s = float (draws |> Array.filter ((=) s) |> Array.length) / 8000.0
            Expect.isTrue (abs (share Heldout - 0.125) < 0.02) $"held-out share {share Heldout}"
            Expect.isTrue (abs (share Corpus - 0.125) < 0.02) $"corpus share {share Corpus}"

        testList "vocabulary" [
            let tokenizer = GymTokenizer.Create()
            testPropertyWithConfig config "gym texts round-trip through the gym tokenizer" <|
                Prop.forAll slipped (fun (terms, slips) ->
                    let y = Gym.withSlips terms slips
                    let texts =
                        [ y; Trd.Runtime.Pipeline.Prompts.Refine(Gym.question terms, y, Gym.solution terms)
                          Trd.Runtime.Pipeline.Prompts.Initial(Gym.question terms) ]
                    texts |> List.forall (fun t -> tokenizer.Decode(tokenizer.Encode t) = t))
            testCase "digits, operators and newlines are single tokens; Wait and the template words are one token each" <| fun () ->
                for piece in [ "0"; "9"; "+"; "="; "\n"; "Wait"; " Wait" ] do
                    Expect.equal (tokenizer.Encode piece).Length 1 $"'{piece}' is one token"
                Expect.equal (tokenizer.Encode "37+48=85").Length 8 "a line is a token per character"
                for word in GymTokenizer.Words do
                    Expect.equal (tokenizer.Encode word).Length 1 $"template word '{word}' is one token"
            testCase "the gym vocabulary is small and holds the paper's epistemic tokens" <| fun () ->
                Expect.isLessThan tokenizer.VocabularySize 1024 "small"
                Expect.isGreaterThan tokenizer.VocabularySize 256 "bytes plus words"
        ]
    ]
