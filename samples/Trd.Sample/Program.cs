// A C# user's first program with the Trd runtime: load a model, define a recipe, run the pipeline's stages on a
// problem file, read the results.
//
//   dotnet run --project samples/Trd.Sample -c Release                      # the gym's student and teacher
//   dotnet run --project samples/Trd.Sample -c Release -- --out runs/sample --student DIR --teacher DIR
//
// With no model given it uses the gym models from the cache (~/.cache/trd/gym; installed there from the models
// shipped inside Trd.Runtime on first use). Any Hugging Face Qwen3 directory (config.json, *.safetensors, tokenizer.json) works too.
using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Generation;
using Trd.Runtime.Gym;
using Trd.Runtime.Pipeline;
using static TorchSharp.torch;

if (args is ["--help"] or ["-h"])
{
    Console.WriteLine("Trd.Sample [--out DIR] [--student DIR] [--teacher DIR]: the runtime's API on the gym (docs/getting-started-csharp.md).");
    return 0;
}
Options options;
try { options = Options.Parse(args); }
catch (ArgumentException e) { Console.Error.WriteLine($"Trd.Sample: {e.Message} (see --help)"); return 2; }

// 1. Models: a student and, for OPD, a separate teacher. Here the gym's, or directories given on the command line.
var cache = GymModels.DefaultCacheRoot();
var student = options.Student ?? GymModels.Ensure(GymModels.Student, cache, Console.WriteLine);
var teacher = options.Teacher ?? GymModels.Ensure(GymModels.Teacher, cache, Console.WriteLine);
Console.WriteLine($"student {student}\nteacher {teacher}");

// 1b. One answer from the student: its tokenizer's chat template, the KV-cache sampler, the decoded text.
var loaded = ModelStore.Load(student, CPU);                                       // the model and its tokenizer
using (loaded.Model)
{
    var prompt = new PromptBuilder(loaded.Tokenizer, enableThinking: false).Encode(Prompts.Initial("Compute 12 + 7 + 30."));
    var answer = Sampler.Generate(loaded.Model, [prompt],
        new SamplingOptions { MaxNewTokens = 64, StopTokenIds = loaded.Tokenizer.StopIds, PromptSeeds = [1] })[0];
    Console.WriteLine($"student's answer: {loaded.Tokenizer.Decode(answer.Tokens, skipSpecialTokens: true)}");
}

// 2. A recipe, composed from Trd.Core's primitives: TRD's trajectory and teacher context (along y_r, the teacher
//    seeing y_o), with a generalised JSD (β = 0.1) instead of forward KL and a per-position clip at c = 1.
//    Every choice is a type (Direction, Support, Clip, Trajectory, TeacherPrompt), never a string.
var recipe = Recipe.Create(
    "TRD-JSD(0.1) clip 1",
    Direction.GeneralisedJsd(0.1),
    clip: Clip.PerPositionAt(1.0),
    trajectory: Trajectory.Refined,
    teacherPrompt: TeacherPrompt.Refine).Validate(); // throws, naming every problem, for an invalid composition
Console.WriteLine($"recipe  {recipe}");

// 3. The pipeline's config, in code: the same typed record `trd run --config` reads from JSON, where the setting, the
//    recipe, the dtypes and the refine policies are words ("opd", "trd", "float32", "rollout"). The problem file
//    uses DeepScaleR's columns: problem, answer, solution.
var problems = Path.Combine(AppContext.BaseDirectory, "problems.jsonl");
var sampling = new SamplingConfig { MaxNewTokens = 96, PromptBudget = 256, BatchSize = 32 };
var config = new PipelineConfig
{
    Seed = 7, Setting = Setting.Opd, Recipe = recipe, Device = "cpu", EnableThinking = false,
    Student = new ModelSpec { Path = student, Dtype = ScalarType.Float32 },
    Teacher = new ModelSpec { Path = teacher, Dtype = ScalarType.Float32 },
    Problems = problems,
    Rollout = sampling,
    Refine = new RefineConfig { MaxNewTokens = 96, PromptBudget = 512, BatchSize = 32,
        OnEmpty = EmptyRewritePolicy.Rollout, OnTruncated = TruncatedRewritePolicy.Keep },
    Train = new TrainConfig
    {
        Lora = new LoraSpec { Rank = 8, Alpha = 16, Dropout = 0.05 }, LearningRate = 2e-3, WarmupRatio = 0.1, FloorRatio = 0.1,
        MicroBatch = 8, GradAccum = 1, Epochs = 2, MaxLength = 512, SaveEvery = 1000, ChunkSize = 256, Tensorboard = false,
        Subset = SubsetFilter.All,
    },
    Eval = new EvalConfig { Problems = [problems], K = 4, Base = true, Sampling = sampling },
};

// 4. The stages, one call each, on a run directory the pipeline opens as `trd run` does: locked while the program runs,
//    its config recorded in config.json (another config is refused) with a manifest.json. Every stage resumes: run the
//    program twice and the second run only reads.
using var pipeline = new TrdPipeline(config, options.Out, log: line => Console.WriteLine($"  {line}"));
var rollouts = pipeline.Rollout();                 // stage 1: y_o ~ π_θ(· | x)
var refinements = pipeline.Refine();               // stage 2: y_r ~ π_T(· | x, y_o)
CorpusReport analysis = pipeline.Analyze();        // lengths, accuracy, the 2×2 joint outcome
var training = pipeline.Train(resume: true);       // stage 3: the recipe along its trajectory
var summaries = pipeline.Evaluate();               // K samples per problem, base and trained

// 5. The results, as objects and as the files they were read from.
Console.WriteLine($"\nrun directory {pipeline.Directory}");
Console.WriteLine($"corpus: {rollouts} rollouts and {refinements} refinements sampled this run, {analysis.Records} records in all");
foreach (var t in analysis.Trajectories)
    Console.WriteLine($"  {t.Trajectory,-4} accuracy {t.Accuracy,6:P1}  mean length {t.Lengths.Mean,6:F1} tokens");
if (analysis.Joint is { } j)
    Console.WriteLine($"  y_o → y_r: fail→pass {j.FailPass}, pass→fail {j.PassFail}, pass→pass {j.PassPass}, fail→fail {j.FailFail}");
Console.WriteLine($"training: {training.Steps} optimiser steps, checkpoint {Path.GetRelativePath(pipeline.Directory, training.Checkpoint)}");
foreach (var s in summaries)
    Console.WriteLine($"eval {s.Model,-8} Avg@{s.Datasets[0].K} {s.MacroAvgAtK,6:P1}  Pass@{s.Datasets[0].K} {s.MacroPassAtK,6:P1}");

// The records behind the numbers: the first refinement, read back with the runtime's typed reader.
var first = CorpusStore.Open(pipeline.CorpusDirectory).ReadRefinements()[0];
Console.WriteLine($"\nfirst y_r ({first.Id}, {first.YRTokenCount} tokens):\n{first.YR}");
return 0;

/// <summary>The command line: --out DIR, --student DIR, --teacher DIR.</summary>
sealed record Options(string Out, string? Student, string? Teacher)
{
    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is not ("--out" or "--student" or "--teacher"))
                throw new ArgumentException($"unknown argument '{args[i]}' (expected --out DIR, --student DIR, --teacher DIR)");
            if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value");
            values[args[i]] = args[++i];
        }
        return new Options(values.GetValueOrDefault("--out", "runs/sample"), values.GetValueOrDefault("--student"), values.GetValueOrDefault("--teacher"));
    }
}
