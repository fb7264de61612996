/// The pipeline: config validation, prompts under a budget, the training-set policy, and the whole pipeline on tiny
/// random Qwen3 models with the real Qwen3 tokenizer — including a stage killed mid-write and resumed.
module Trd.Tests.PipelineTests

open System
open System.IO
open Expecto
open System.Text.Json.Nodes
open Trd.Core
open Trd.Runtime.Pipeline

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-pipeline-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private problemsFile (dir: string) (count: int) =
    let path = Path.Combine(dir, "problems.jsonl")
    let r = Random(3)
    let lines =
        [ for i in 0 .. count - 1 ->
            let a, b = r.Next(10, 99), r.Next(10, 99)
            sprintf """{"id": "q%d", "problem": "Compute %d + %d.", "answer": "%d", "solution": "%d + %d = %d, so \\boxed{%d}."}""" i a b (a + b) a b (a + b) (a + b) ]
    File.WriteAllLines(path, lines)
    path

/// A tiny OPD or OPSD config over the real Qwen3 tokenizer (random weights: outputs are noise, shapes are real).
let private tinyConfigOf (withEval: bool) (dir: string) (setting: Setting) (recipe: Recipe) (corpus: string) =
    let tokenizer = TestData.qwen3ModelDirectory.Force()
    let random seed hidden = TinyModelSpec(HiddenSize = hidden, Layers = 1, Heads = 2, KvHeads = 1, HeadDim = 8, IntermediateSize = 32, Seed = seed, Std = 0.5)
    let problems = problemsFile dir 4
    PipelineConfig(
        Seed = 7L, Setting = setting, Recipe = recipe, Corpus = corpus,
        Student = ModelSpec(Random = random 1L 16, Tokenizer = tokenizer),
        Teacher = ModelSpec(Random = random 2L 24, Tokenizer = tokenizer),
        Problems = problems,
        Rollout = SamplingConfig(MaxNewTokens = 6, PromptBudget = 128, BatchSize = 3),
        Refine = RefineConfig(MaxNewTokens = 6, PromptBudget = 512, BatchSize = 3, OnEmpty = EmptyRewritePolicy.Rollout, OnTruncated = TruncatedRewritePolicy.Keep),
        Train = TrainConfig(Lora = LoraSpec(Rank = 2, Alpha = 4.0, Dropout = 0.0), LearningRate = 1e-3, MicroBatch = 1, GradAccum = 2,
                            Epochs = 1, MaxLength = 512, ChunkSize = 16),
        Eval = (if withEval then EvalConfig(Problems = [| problems |], K = 2, Sampling = SamplingConfig(MaxNewTokens = 4, PromptBudget = 128, BatchSize = 4)) else EvalConfig()))

let private tinyConfigWith (withEval: bool) (dir: string) (setting: Setting) (method: ComparisonRow) =
    tinyConfigOf withEval dir setting (Methods.recipeOf method setting) null

let private tinyConfig = tinyConfigWith true

[<Tests>]
let tests =
    testList "Pipeline" [
        testList "config" [
            test "an unknown key is an error naming it" {
                let message = Generators.throwsMessage<ConfigException> (fun () -> PipelineConfig.Parse("""{"seed": 1, "rollout": {"temprature": 0.7}}""", "x.json") |> ignore)
                Expect.stringContains message "temprature" "names the key"
                Expect.stringContains message "x.json" "names the file"
            }
            test "every bad value is listed with its key" {
                let json = """{"setting": "opd", "recipe": "trd-ish", "problems": "p.jsonl", "student": {"path": "m"},
                              "rollout": {"top_p": 1.5}, "train": {"grad_accum": 0, "subset": "fails"}, "refine": {"on_empty": "drop"}}"""
                let message = Generators.throwsMessage<ConfigException> (fun () -> PipelineConfig.Parse(json).Validated("c.json") |> ignore)
                for part in [ "trd-ish"; "rollout.top_p"; "train.grad_accum"; "train.subset"; "refine.on_empty"; "teacher: OPD needs" ] do
                    Expect.stringContains message part $"mentions {part}"
            }
            test "the recipe names map onto Trd.Core's recipes (clip constant by setting)" {
                let recipe name setting = (PipelineConfig.Parse($$"""{"setting": "{{setting}}", "recipe": "{{name}}"}""")).Recipe
                Expect.equal (recipe "trd" "opd") Recipes.trd "trd"
                Expect.equal (recipe "forward-kl-clip" "opsd").Clip (PerPosition 0.06) "OPSD clip"
                Expect.equal (recipe "forward-kl-clip" "opd").Clip (PerPosition 0.1) "OPD clip"
                Expect.equal (recipe "Forward-KL-Clip" "OPSD") (Recipes.forwardKlClip Opsd) "words ignore case"
            }
            test "configs/tiny.json loads and validates" {
                let c = PipelineConfig.Load(Path.Combine(TestData.repositoryRoot, "configs", "tiny.json"))
                Expect.isTrue (File.Exists c.Problems) "problems path resolved against the config's directory"
            }
        ]

        testList "prompts" [
            let tokenizer () = TestData.qwen3Tokenizer.Force()
            test "a refinement prompt over budget shortens y_o, keeps problem and instructions, and says so" {
                let t = tokenizer ()
                let builder = PromptBuilder(t, false)
                let attempt = t.Encode(String.replicate 200 "step, ")
                let full = builder.Refine("Compute 2 + 2.", attempt, null, 100000)
                Expect.isNull full.Notice "fits: no notice"
                let budget = full.Ids.Length - 300
                let cut = builder.Refine("Compute 2 + 2.", attempt, null, budget)
                Expect.isLessThanOrEqual cut.Ids.Length budget "within budget"
                Expect.stringContains cut.UserMessage "Compute 2 + 2." "problem kept"
                Expect.stringContains cut.UserMessage "Output only the rewritten solution" "instructions kept"
                Expect.stringContains cut.UserMessage "shortened to fit the prompt budget" "visible notice"
                Expect.stringContains cut.Notice "attempt" "notice names y_o"
            }
            test "under OPSD y* is shortened only once y_o is gone; nothing fits → null" {
                let t = tokenizer ()
                let builder = PromptBuilder(t, false)
                let attempt = t.Encode(String.replicate 50 "try, ")
                let reference = String.replicate 100 "ref, "
                let bare = builder.Refine("Q?", [||], "", 100000)
                let cut = builder.Refine("Q?", attempt, reference, bare.Ids.Length + 90)
                Expect.isNotNull cut "fits after cutting"
                Expect.stringContains cut.Notice "attempt shortened to fit the prompt budget: 0 of" "y_o gone"
                Expect.stringContains cut.Notice "reference solution" "then y*"
                Expect.isNull (builder.Refine("Q?", attempt, reference, 10)) "the problem and instructions alone are over budget"
            }
            test "teacher contexts follow Trd.Core: OPSD vanilla shows y*, refine shows the recorded prompt" {
                let opsd = Recipe.teacherContext Opsd Recipes.forwardKl
                Expect.stringContains (PromptBuilder.UserMessage(opsd, "Q", "REF", null)) "REF" "y* shown"
                let refine = Recipe.teacherContext Opd Recipes.trd
                Expect.equal (PromptBuilder.UserMessage(refine, "Q", null, "RECORDED")) "RECORDED" "the prompt that generated y_r"
                Expect.throwsT<ArgumentException> (fun () -> PromptBuilder.UserMessage(opsd, "Q", null, null) |> ignore) "OPSD without y*"
            }
        ]

        testSequenced <| testList "end to end" [
            test "OPD TRD: every stage runs on a tiny Qwen3 with the real tokenizer, and a torn stage resumes to the same corpus" {
                let dir = tempDir ()
                let config = tinyConfig dir Opd Methods.trd
                let run = Path.Combine(dir, "run")
                use pipeline = new TrdPipeline(config, run)
                pipeline.RunAll(false)
                let rollouts = Path.Combine(run, "corpus", "rollouts.jsonl")
                let refinements = Path.Combine(run, "corpus", "refinements.jsonl")
                Expect.equal (File.ReadAllLines rollouts).Length 4 "one y_o per problem"
                Expect.equal (File.ReadAllLines refinements).Length 4 "one y_r per problem"
                let metrics = File.ReadAllLines(Path.Combine(run, "train", "metrics.jsonl"))
                Expect.equal metrics.Length 2 "⌈4 / 2⌉ optimiser steps logged"
                Expect.isNonEmpty (Directory.GetFiles(Path.Combine(run, "train", "tensorboard"), "events.out.tfevents.*")) "TensorBoard events"
                Expect.isTrue (File.Exists(Path.Combine(run, "train", "checkpoints", "latest"))) "checkpoint"
                let latest = File.ReadAllText(Path.Combine(run, "train", "checkpoints", "latest")).Trim()
                let adapterConfig = Path.Combine(run, "train", "checkpoints", latest, "adapter", "adapter_config.json")
                let baseModel = (System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText adapterConfig)).["base_model_name_or_path"].GetValue<string>()
                Expect.equal baseModel (Path.Combine("models", "student")) "the adapter names its base model (for PEFT and vLLM): a model the run wrote, by its path in the run"
                Expect.isTrue (File.Exists(Path.Combine(run, "eval", "trained", "summary.json"))) "trained evaluated"
                Expect.isTrue (File.Exists(Path.Combine(run, "eval", "base", "summary.json"))) "base evaluated"
                Expect.isTrue (File.Exists(Path.Combine(run, "analysis", "analysis.json"))) "analysis"
                Expect.isTrue (File.Exists(Path.Combine(run, "corpus", "corpus.parquet"))) "verl export"

                // A run killed mid-write: the last record torn in half, the one before lost.
                let original = File.ReadAllText rollouts
                let lines = File.ReadAllLines rollouts
                File.WriteAllText(rollouts, String.Join("\n", lines[0..1]) + "\n" + lines[2].Substring(0, lines[2].Length / 2))
                use again = new TrdPipeline(config, run)
                let written = again.Rollout()
                Expect.equal written 2 "the torn and the missing record are sampled again"
                Expect.equal (File.ReadAllText rollouts) original "the same corpus as the uninterrupted run"
            }

            test "every shaped method trains through the pipeline on one shared tiny corpus, and logs its plan per step" {
                let dir = tempDir ()
                let first = tinyConfigWith false dir Opd Methods.reverseKl
                use source = new TrdPipeline(first, Path.Combine(dir, "corpus-run"))
                source.Rollout() |> ignore
                let corpus = source.CorpusDirectory
                let runs =
                    [ for m in ShapedMethods.all -> m.ConfigName, Opd, ShapedMethods.defaultOf m ]
                    @ [ "gndpo (OPSD)", Opsd, ShapedMethods.defaultOf ShapedMethods.gndpo ]
                for name, setting, recipe in runs do
                    // OPSD samples its own corpus (the rollout stage writes it); OPD methods share the first run's.
                    let config = tinyConfigOf false dir setting recipe (if setting = Opd then corpus else null)
                    use pipeline = new TrdPipeline(config, Path.Combine(dir, "run-" + name.Replace(' ', '-')))
                    if setting = Opsd then pipeline.Rollout() |> ignore
                    let outcome = pipeline.Train(false)
                    Expect.equal outcome.Steps 2L $"{name}: steps"
                    let log = Trd.Runtime.Logging.MetricsLog.Read(Path.Combine(pipeline.TrainDirectory, "metrics.jsonl")).Records |> Seq.filter (fun r -> r.Step.HasValue) |> Seq.toArray
                    Expect.equal log.Length 2 $"{name}: two steps logged"
                    for r in log do
                        for key in [ "loss"; "grad_norm"; "weight_mean"; "weight_std"; "masked_fraction"; "trajectories_filtered" ] do
                            Expect.isTrue (r.Values.ContainsKey key) $"{name}: {key} logged"
                        Expect.isTrue (r.Values["loss"].HasValue && Double.IsFinite r.Values["loss"].Value) $"{name}: a finite loss"
                        Expect.isTrue (r.Values["weight_mean"].HasValue) $"{name}: the weight mean"
                    // A gate that masks every position trains nothing and says so: on two random models over Qwen3's
                    // 151,936 entries TA-OPD's teachability is ≈ k/V and TrOPD's trust π_T(y)/π_θ(y) ≈ 1e-5, far below τ.
                    let allMasked = log |> Array.forall (fun r -> r.Values["masked_fraction"].Value = 1.0)
                    if allMasked then Expect.isTrue (log |> Array.forall (fun r -> r.Values["grad_norm"].Value = 0.0)) $"{name}: all masked, no gradient"
                    else Expect.isTrue (log |> Array.exists (fun r -> r.Values["grad_norm"].Value > 0.0)) $"{name}: a gradient reached the adapters"
                    if name <> "ta-opd" && name <> "tropd-mask" then Expect.isFalse allMasked $"{name}: not everything masked"
                    Expect.equal (PipelineConfig.Parse(File.ReadAllText(Path.Combine(pipeline.Directory, "config.json"))).Recipe) recipe $"{name}: config.json names the method"
            }

            test "OPSD baselines train along y_o with the student's backbone (adapters off) as teacher" {
                let dir = tempDir ()
                let config = tinyConfigWith false dir Opsd Methods.forwardKlClip
                use pipeline = new TrdPipeline(config, Path.Combine(dir, "run"))
                pipeline.Rollout() |> ignore
                let struct (examples, counts) = pipeline.BuildExamples()
                Expect.equal counts.Rollout 4 "all along y_o"
                for e in examples do
                    Expect.equal e.Source "y_o" "baseline trajectory"
                    let text = pipeline.Student.Tokenizer.Decode(e.TeacherContext)
                    Expect.stringContains text "reference solution" "OPSD vanilla teacher sees y*"
                let outcome = pipeline.Train(false)
                Expect.equal outcome.Steps 2L "steps"
            }

            test "teacher_top_k: the teacher's top-K is scored once and stored, and training from it matches training against the teacher" {
                let dir = tempDir ()
                let withRecipe (topK: int option) =
                    let node = JsonNode.Parse((tinyConfig dir Opd Methods.forwardKl).ToJson()).AsObject()
                    node["objective"] <- JsonNode.Parse("""{"name": "FKL top-8 + tail", "support": "top-k-tail", "top_k": 8}""")
                    match topK with Some k -> node["train"].AsObject()["teacher_top_k"] <- JsonValue.Create k | None -> ()
                    PipelineConfig.Parse(node.ToJsonString())
                let run (name: string) (config: PipelineConfig) =
                    use pipeline = new TrdPipeline(config, Path.Combine(dir, name))
                    pipeline.Rollout() |> ignore
                    pipeline.Train(false) |> ignore
                    Trd.Runtime.Logging.MetricsLog.Read(Path.Combine(dir, name, "train", "metrics.jsonl")).Records
                let dense = run "dense" (withRecipe None)
                let stored = run "stored" (withRecipe (Some 16))
                Expect.equal stored.Count dense.Count "as many steps"
                for a, b in Seq.zip dense stored do
                    for key in [ "loss"; "kl_pre_clip"; "ppl_teacher" ] do
                        Expect.floatClose { absolute = 1e-5; relative = 1e-5 } b.Values[key].Value a.Values[key].Value $"step {a.Step}: {key}"
                let index = Path.Combine(dir, "stored", "train", "teacher-scores", "index.jsonl")
                Expect.equal (File.ReadAllLines index).Length 4 "one stored record per trajectory"
                let message = Generators.throwsMessage<ConfigException> (fun () ->
                    let node = JsonNode.Parse((tinyConfig dir Opd Methods.trd).ToJson()).AsObject()
                    node["train"].AsObject()["teacher_top_k"] <- JsonValue.Create 16
                    PipelineConfig.Parse(node.ToJsonString()).Validated("c.json") |> ignore)
                Expect.stringContains message "train.teacher_top_k = 16: recipe 'TRD' needs the teacher's full vocabulary" "refused before any work, naming the recipe"
            }

            test "a shared corpus is read in place: its stages only check it, and an incomplete one is refused naming it" {
                let dir = tempDir ()
                let config = tinyConfigWith false dir Opsd Methods.forwardKl
                let drawn = Path.Combine(dir, "drawn")
                do
                    use owner = new TrdPipeline(config, drawn)
                    owner.Rollout() |> ignore
                let shared = Path.Combine(drawn, "corpus")
                let before = File.ReadAllBytes(Path.Combine(shared, "rollouts.jsonl"))
                use reader = new TrdPipeline(config.WithCorpus shared, Path.Combine(dir, "reader"))
                Expect.equal (reader.Rollout()) 0 "nothing written"
                Expect.equal (reader.Train(false)).Steps 2L "trains on the shared y_o"
                Expect.equal (File.ReadAllBytes(Path.Combine(shared, "rollouts.jsonl"))) before "the shared corpus is unchanged"
                Expect.isFalse (Directory.Exists(Path.Combine(dir, "reader", "corpus"))) "no corpus of its own"
                let message = Generators.throwsMessage<ConfigException> (fun () -> reader.Refine() |> ignore)
                Expect.stringContains message shared "names the shared corpus"
                Expect.stringContains message "refinements" "and the missing stage"
            }
        ]
    ]
