/// Problem sets (JSONL and parquet, DeepScaleR and verl layouts), the corpus store's resumable JSONL, and the verl
/// export read back.
module Trd.Tests.DataTests

open System
open System.IO
open Expecto
open Trd.Core
open Trd.Runtime.Data

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-data-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private write (dir: string) (name: string) (lines: string list) =
    let path = Path.Combine(dir, name)
    File.WriteAllLines(path, lines)
    path

let private failure (f: unit -> unit) = Generators.throwsMessage<ProblemSetException> f

let private rollout (id: string) (correct: bool) =
    RolloutRecord(Id = id, DataSource = "d", Question = $"q {id}", Answer = "1", Solution = "s", Prompt = "p", YO = $"y_o of {id}",
                  YOTokens = [| 1; 2; 3 |], YOTokenCount = 3, YOCorrect = correct)

let private refinement (id: string) (status: string) =
    RefinementRecord(Id = id, Prompt = "rp", YR = $"y_r of {id}", YRTokens = [| 4; 5 |], YRTokenCount = 2, Status = status, YRCorrect = true)

[<Tests>]
let tests =
    testList "Data" [
        testList "problem sets" [
            test "DeepScaleR JSONL: columns, explicit ids, blank lines skipped" {
                let dir = tempDir ()
                let path = write dir "set.jsonl" [ """{"id": "a", "problem": "1+1?", "answer": "2", "solution": "1+1=2"}"""; ""; """{"id": "b", "problem": "2+2?", "answer": 4}""" ]
                let ps = ProblemSet.Load path
                Expect.equal (ps |> Seq.map (fun p -> p.Id) |> Seq.toList) [ "a"; "b" ] "ids"
                Expect.equal ps[1].Answer "4" "a numeric answer is read as its text"
                Expect.isNull ps[1].Solution "no solution"
                Expect.equal ps[0].DataSource "set" "dataset named after the file"
            }
            test "content ids survive reordering" {
                let dir = tempDir ()
                let rows = [ """{"problem": "x?", "answer": "1"}"""; """{"problem": "y?", "answer": "2"}""" ]
                let a = ProblemSet.Load(write dir "a.jsonl" rows)
                let b = ProblemSet.Load(write dir "b.jsonl" (List.rev rows))
                Expect.equal (a |> Seq.map (fun p -> p.Question, p.Id) |> Set.ofSeq) (b |> Seq.map (fun p -> p.Question, p.Id) |> Set.ofSeq) "same id per problem"
                Expect.notEqual a[0].Id a[1].Id "distinct"
            }
            test "an exact repeat of a problem gets a suffixed content id; a repeated explicit id is an error" {
                let dir = tempDir ()
                let ps = ProblemSet.Load(write dir "rep.jsonl" [ """{"problem": "x?", "answer": "1"}"""; """{"problem": "x?", "answer": "1"}""" ])
                Expect.equal ps[1].Id (ps[0].Id + "-2") "suffixed"
            }
            test "verl JSONL: chat prompt, reward_model.ground_truth, extra_info" {
                let dir = tempDir ()
                let path =
                    write dir "verl.jsonl"
                        [ """{"data_source": "aime", "prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Find x."}], "reward_model": {"style": "rule", "ground_truth": "7"}, "extra_info": {"index": 3, "id": "p3", "solution": "x=7"}}""" ]
                let p = (ProblemSet.Load path)[0]
                Expect.equal (p.Id, p.Question, p.Answer, p.Solution, p.DataSource) ("p3", "Find x.", "7", "x=7", "aime") "fields"
            }
            test "every bad row names file, row and field" {
                let dir = tempDir ()
                let cases =
                    [ [ """{"problem": "q"}""" ], "row 1, field 'answer': missing"
                      [ """{"problem": "q", "answer": "1"}"""; """{"problem": ["q"], "answer": "1"}""" ], "row 2, field 'problem': expected a string"
                      [ """{"problem": "q", "answer": "1"}"""; "{not json" ], "row 2: not valid JSON"
                      [ """{"problem": "  ", "answer": "1"}""" ], "row 1, field 'problem': empty"
                      [ """{"text": "q", "label": "1"}""" ], "unknown layout: columns text, label"
                      [ """{"id": "a", "problem": "q", "answer": "1"}"""; """{"id": "a", "problem": "r", "answer": "2"}""" ], "row 2, field 'id': id 'a' is also the id of row 1"
                      [ """{"prompt": "q", "reward_model": {}}""" ], "field 'reward_model.ground_truth': missing" ]
                for lines, expected in cases do
                    let message = failure (fun () -> ProblemSet.Load(write dir "bad.jsonl" lines) |> ignore)
                    Expect.stringContains message "bad.jsonl" "names the file"
                    Expect.stringContains message expected $"{lines}"
            }
            test "a missing file and an unknown extension are errors" {
                Expect.stringContains (failure (fun () -> ProblemSet.Load "/nonexistent/p.jsonl" |> ignore)) "no such file" "missing"
                let dir = tempDir ()
                Expect.stringContains (failure (fun () -> ProblemSet.Load(write dir "p.csv" [ "a,b" ]) |> ignore)) "unknown extension" "extension"
            }

            test "an input file's cut last line is an error naming its row, not a torn record left unread" {
                let dir = tempDir ()
                let path = Path.Combine(dir, "cut.jsonl")
                File.WriteAllText(path, "{\"problem\": \"x?\", \"answer\": \"1\"}\n{\"problem\": \"y?\", \"ans")
                let message = failure (fun () -> ProblemSet.Load path |> ignore)
                Expect.stringContains message "row 2" "the cut row is named"
                File.WriteAllText(path, "{\"problem\": \"x?\", \"answer\": \"1\"}\n{\"problem\": \"y?\", \"answer\": \"2\"}")
                Expect.equal (ProblemSet.Load path).Count 2 "a whole last line without its line break is read"
            }
        ]

        testList "corpus store" [
            test "appends, reads back in order, and lists completed ids" {
                let store = CorpusStore.Open(tempDir ())
                store.AppendRollouts [ rollout "a" true; rollout "b" false ]
                store.AppendRollouts [ rollout "c" false ]
                Expect.equal (store.ReadRollouts() |> Seq.map (fun r -> r.Id) |> Seq.toList) [ "a"; "b"; "c" ] "order"
                Expect.equal (store.CompletedIds CorpusStore.RolloutsStage |> Set.ofSeq) (set [ "a"; "b"; "c" ]) "completed"
                Expect.isEmpty (store.CompletedIds CorpusStore.RefinementsStage) "no refinements yet"
                let r = store.ReadRollouts()[0]
                Expect.sequenceEqual r.YOTokens [| 1; 2; 3 |] "token ids kept"
            }
            test "a torn final line is not read and is reported (the file is left as it is); the next append cuts it away" {
                let dir = tempDir ()
                let store = CorpusStore.Open dir
                store.AppendRollouts [ rollout "a" true; rollout "b" false ]
                let path = store.PathOf CorpusStore.RolloutsStage
                File.AppendAllText(path, """{"id": "c", "data_sou""")
                let torn = File.ReadAllBytes path
                let reopened = CorpusStore.Open dir
                Expect.equal reopened.Repairs.Count 1 "reported"
                Expect.stringContains reopened.Repairs[0] "torn final line" "says what"
                Expect.equal (reopened.CompletedIds CorpusStore.RolloutsStage |> Set.ofSeq) (set [ "a"; "b" ]) "half a record is never read back"
                Expect.equal (File.ReadAllBytes path) torn "a reader leaves the file as it is (another process may be appending)"
                reopened.AppendRollouts [ rollout "c" true ]
                Expect.equal (reopened.ReadRollouts() |> Seq.map (fun r -> r.Id) |> Seq.toList) [ "a"; "b"; "c" ] "the writer cut the torn line away"
            }
            test "a bad line before the end and a duplicate id are errors naming file and line" {
                let dir = tempDir ()
                let store = CorpusStore.Open dir
                store.AppendRollouts [ rollout "a" true ]
                let path = store.PathOf CorpusStore.RolloutsStage
                File.AppendAllText(path, "garbage\n")
                store.AppendRollouts [ rollout "b" true ]
                let message = Generators.throwsMessage<CorpusException> (fun () -> CorpusStore.Open dir |> ignore)
                Expect.stringContains message "line 2" "names the line"
                let dir2 = tempDir ()
                let s2 = CorpusStore.Open dir2
                s2.AppendRollouts [ rollout "a" true; rollout "a" false ]
                let message = Generators.throwsMessage<CorpusException> (fun () -> s2.ReadRollouts() |> ignore)
                Expect.stringContains message "recorded twice" "duplicate"
            }
        ]

        test "the verl parquet export reads back as a problem set, with the trajectories in extra_info" {
            let dir = tempDir ()
            let path = Path.Combine(dir, "corpus.parquet")
            let rows = [ rollout "a" false, refinement "a" "ok"; rollout "b" true, null ]
            VerlExport.Write(path, rows |> Seq.map (fun (r, f) -> struct (r, f)), Trajectory.Refined)
            let ps = ProblemSet.Load path
            Expect.equal (ps |> Seq.map (fun p -> p.Id, p.Question, p.Answer, p.Solution, p.DataSource) |> Seq.toList)
                [ "a", "q a", "1", "s", "d"; "b", "q b", "1", "s", "d" ] "ids, questions, answers, y*, data source"
            use stream = File.OpenRead path
            let data = Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(stream).Result.Data
            Expect.equal (string (data[0]["response"])) "y_r of a" "refined response"
            Expect.equal (string (data[1]["response"])) "y_o of b" "y_o where there is no refinement"
            let extra = data[0]["extra_info"] :?> Collections.Generic.IDictionary<string, obj>
            Expect.equal (string extra["y_o"]) "y_o of a" "y_o kept"
            Expect.equal (string extra["y_r_status"]) "ok" "status kept"
        }
    
        testList "teacher scores" [
            let scores (rng: Random) (id: string) (positions: int) (k: int) =
                TeacherScores(id, k, Array.init (positions * k) (fun _ -> rng.Next 151936),
                              Array.init (positions * k) (fun _ -> float32 (-20.0 * rng.NextDouble())),
                              Array.init positions (fun _ -> if rng.Next 5 = 0 then Single.NegativeInfinity else float32 (-30.0 * rng.NextDouble())))
            let same (a: TeacherScores) (b: TeacherScores) =
                Expect.equal b.Id a.Id "id"
                Expect.sequenceEqual b.Ids a.Ids $"{a.Id}: ids"
                Expect.sequenceEqual b.LogProbs a.LogProbs $"{a.Id}: log-probabilities, bit for bit"
                Expect.sequenceEqual b.TargetLogProbs a.TargetLogProbs $"{a.Id}: target log-probabilities"

            test "records round-trip bit for bit across shards, and a reopened store reads them from their shards" {
                let dir = tempDir ()
                let rng = Random 31
                let k = 8
                let written = [ for i in 1 .. 12 -> scores rng $"p{i}" (1 + rng.Next 40) k ]
                let store = TeacherScoreStore.Open(dir, k, shardBytes = 2048L)
                Expect.equal store.BytesPerToken (8L * int64 k + 4L) "8K + 4 bytes per token"
                for r in written do store.Append r
                let shards = Directory.GetFiles(dir, "shard-*.bin")
                Expect.isGreaterThan shards.Length 1 "several shards"
                let bytes = shards |> Array.sumBy (fun f -> FileInfo(f).Length)
                Expect.equal bytes (written |> List.sumBy (fun r -> int64 r.Positions * store.BytesPerToken)) "exactly 8K + 4 bytes per token on disk"
                let reopened = TeacherScoreStore.Open(dir, k, shardBytes = 2048L)
                for r in List.rev written do same r (reopened.Read r.Id)
            }

            test "a record in flight when a run stopped is cut by the next writer; readers leave it; K and bad indexes are refused" {
                let dir = tempDir ()
                let rng = Random 32
                let store = TeacherScoreStore.Open(dir, 4)
                let first = scores rng "a" 5 4
                store.Append first
                let shard = Path.Combine(dir, "shard-00000.bin")
                File.AppendAllText(shard, "half a record")
                let before = File.ReadAllBytes shard
                let reopened = TeacherScoreStore.Open(dir, 4)
                same first (reopened.Read "a")
                Expect.equal (File.ReadAllBytes shard) before "opening and reading modified nothing"
                let second = scores rng "b" 3 4
                reopened.Append second
                Expect.equal (FileInfo(shard).Length) ((5L + 3L) * (8L * 4L + 4L)) "the stray bytes were cut: two records' bytes"
                same second ((TeacherScoreStore.Open(dir, 4)).Read "b")
                Expect.stringContains (Generators.throwsMessage<CorpusException> (fun () -> TeacherScoreStore.Open(dir, 8) |> ignore)) "stored with K = 4, not 8" "another K"
                File.WriteAllBytes(shard, before[.. 40])
                Expect.stringContains (Generators.throwsMessage<CorpusException> (fun () -> TeacherScoreStore.Open(dir, 4) |> ignore)) "which it lacks" "an index naming missing bytes"
                Expect.throwsT<ArgumentException> (fun () -> reopened.Append(TeacherScores("c", 4, [| 1 |], [| 0.0f |], [| 0.0f |]))) "a record of the wrong shape"
            }
        ]

        testList "run directory" [
            test "the lock is re-entrant within a process, leaves a note while held and removes it on the last release" {
                let dir = tempDir ()
                let note = Path.Combine(dir, Trd.Runtime.Pipeline.RunLock.NoteName)
                let outer = Trd.Runtime.Pipeline.RunLock.Acquire(dir, "outer")
                Expect.isTrue (File.Exists note) "a note names the holder"
                Expect.stringContains (File.ReadAllText note) $"\"pid\":{Environment.ProcessId}" "with its pid"
                let inner = Trd.Runtime.Pipeline.RunLock.Acquire(dir, "inner")
                inner.Dispose()
                Expect.isTrue (File.Exists note) "still held by the outer hold"
                outer.Dispose()
                Expect.isFalse (File.Exists note) "released"
                use _again = Trd.Runtime.Pipeline.RunLock.Acquire(dir, "again")
                Expect.isTrue (File.Exists note) "taken again"
            }

            test "a run directory refuses another config naming the file, and writes nothing for an invalid one" {
                let dir = tempDir ()
                let make seed problems = Trd.Runtime.Pipeline.PipelineConfig(Seed = seed, Problems = problems, Student = Trd.Runtime.Pipeline.ModelSpec(Path = "s"), Setting = Opsd)
                let config = make 1L "p.jsonl"
                do
                    use run = Trd.Runtime.Pipeline.RunDirectory.Open(Path.Combine(dir, "a"), config, "test", stages = Trd.Runtime.Pipeline.Stages.Analyze)
                    Expect.isTrue (File.Exists(Path.Combine(dir, "a", "config.json"))) "config recorded"
                    Expect.isTrue (File.Exists(Path.Combine(dir, "a", "manifest.json"))) "manifest recorded"
                do
                    use run = Trd.Runtime.Pipeline.RunDirectory.Open(Path.Combine(dir, "a"), config, "test again", stages = Trd.Runtime.Pipeline.Stages.Analyze)
                    Expect.equal run.Config.Seed config.Seed "the same config opens again"
                let other = make 2L "p.jsonl"
                let message = Generators.throwsMessage<Trd.Runtime.Pipeline.ConfigException> (fun () ->
                    Trd.Runtime.Pipeline.RunDirectory.Open(Path.Combine(dir, "a"), other, "test other", stages = Trd.Runtime.Pipeline.Stages.Analyze) |> ignore)
                Expect.stringContains message (Path.Combine(dir, "a", "config.json")) "names the recorded config"
                let bad = make 3L ""
                Generators.throwsMessage<Trd.Runtime.Pipeline.ConfigException> (fun () ->
                    Trd.Runtime.Pipeline.RunDirectory.Open(Path.Combine(dir, "b"), bad, "test bad") |> ignore) |> ignore
                Expect.isFalse (Directory.Exists(Path.Combine(dir, "b"))) "nothing written before validation"
                use _reopened = Trd.Runtime.Pipeline.RunDirectory.Open(Path.Combine(dir, "a"), config, "after a refusal", stages = Trd.Runtime.Pipeline.Stages.Analyze)
                Expect.isTrue true "a refusal released the lock"
            }
        ]
    ]
