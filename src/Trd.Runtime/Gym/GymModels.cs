using System.Text.Json;
using System.Text.Json.Serialization;
using Trd.Core;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Generation;
using Trd.Runtime.Logging;
using Trd.Runtime.Models;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Tokenization;
using static TorchSharp.torch;
using GymTask = Trd.Core.Gym;

namespace Trd.Runtime.Gym;

/// <summary>What a trained gym model measured on validation problems (pretraining split, unseen), at the rollout sampling.</summary>
public sealed record GymModelCard(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("parameters")] long Parameters,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("validation_problems")] int ValidationProblems,
    [property: JsonPropertyName("solve_accuracy")] double SolveAccuracy,
    [property: JsonPropertyName("solve_with_wait")] double SolveWithWait,
    [property: JsonPropertyName("refine_accuracy")] double? RefineAccuracy,
    [property: JsonPropertyName("refine_with_reference_accuracy")] double? RefineWithReferenceAccuracy,
    [property: JsonPropertyName("loss")] PretrainStep[] Loss);

/// <summary>
/// The gym's student and OPD teacher (docs/gym.md): tiny Qwen3-architecture models with the gym vocabulary, trained
/// by <see cref="Pretrainer"/> and cached on disk under <c>&lt;cache&gt;/gym/&lt;name&gt;-&lt;key&gt;</c> (config.json,
/// model.safetensors, tokenizer.json, recipe.json, card.json), keyed by recipe and seed and reused.
/// </summary>
public static class GymModels
{
    /// <summary>Bumped whenever the data generator, prompts or pretraining code change what a recipe produces.</summary>
    public const int Version = 2;

    // Each model is trained in two phases, the second starting from the first (init_from): the first learns to
    // solve (the running sums and the carry-dropping habit), the second shifts the mixture towards the long-context
    // tasks (refinement; solving and refining with y* shown), which a model only learns once it can solve.
    // The recipes are the ones measured in docs/gym.md.

    /// <summary>The student's first phase: solving, from random weights.</summary>
    public static GymModelRecipe StudentPretrain { get; } = new()
    {
        Name = "student-pretrain", HiddenSize = 64, Layers = 3, Heads = 4, KvHeads = 2, HeadDim = 16, IntermediateSize = 192,
        Seed = 1, Steps = 2000, BatchSize = 16, LearningRate = 1e-2,
        Solve = 0.6, SolveWithReference = 0.15, RefineWithReference = 0.25,
        SlipRate = 0.4, CarryShare = 0.6,
    };

    /// <summary>
    /// The student: small, and trained on solutions where a carry is often dropped (slip_rate per carrying step) and
    /// most dropped carries are kept to a wrong answer, so its held-out accuracy sits in the middle band and most of its
    /// errors are prefix failures. Its second phase weights OPSD's two privileged contexts (solve with y* shown; refine
    /// y_o given y*), because in OPSD the teacher is this model given y*.
    /// </summary>
    public static GymModelRecipe Student { get; } = StudentPretrain with
    {
        Name = "student", InitFrom = StudentPretrain, Steps = 1000, LearningRate = 5e-3,
        Solve = 0.4, SolveWithReference = 0.2, RefineWithReference = 0.4,
    };

    /// <summary>The teacher's first phase: the student's first phase trained longer on cleaner solutions, and on refinement.</summary>
    public static GymModelRecipe TeacherPretrain { get; } = StudentPretrain with
    {
        Name = "teacher-pretrain", InitFrom = StudentPretrain, Seed = 2, Steps = 800, LearningRate = 3e-3,
        Solve = 0.6, SolveWithReference = 0, Refine = 0.4, RefineWithReference = 0,
        SlipRate = 0.08, CarryShare = 0.6,
    };

    /// <summary>
    /// The OPD teacher: the student's first phase trained longer, on cleaner solutions (carries rarely dropped, but a
    /// dropped one is still kept more often than caught: the bimodal habit of §4.1 after a flawed prefix), with its
    /// second phase weighted towards refinement without y*.
    /// </summary>
    public static GymModelRecipe Teacher { get; } = TeacherPretrain with
    {
        Name = "teacher", InitFrom = TeacherPretrain, Steps = 1200, Solve = 0.3, Refine = 0.7,
    };

    /// <summary>The cache root: $TRD_CACHE, else $XDG_CACHE_HOME/trd, else ~/.cache/trd.</summary>
    public static string DefaultCacheRoot()
    {
        if (Environment.GetEnvironmentVariable("TRD_CACHE") is { Length: > 0 } trd) return trd;
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) return Path.Combine(xdg, "trd");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "trd");
    }

    /// <summary>Where a recipe's model lives in a cache root.</summary>
    public static string DirectoryOf(GymModelRecipe recipe, string cacheRoot) =>
        Path.Combine(cacheRoot, "gym", $"{recipe.Name}-{recipe.Key}");

    /// <summary>True when the recipe's model is in the cache.</summary>
    public static bool IsCached(GymModelRecipe recipe, string cacheRoot) =>
        File.Exists(Path.Combine(DirectoryOf(recipe, cacheRoot), "card.json"));

    static readonly JsonSerializerOptions CardJson = new() { WriteIndented = true };

    /// <summary>Reads a cached model's card.</summary>
    public static GymModelCard ReadCard(string directory) =>
        JsonSerializer.Deserialize<GymModelCard>(File.ReadAllText(Path.Combine(directory, "card.json")), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
        ?? throw new InvalidDataException($"{directory}/card.json is empty");

    /// <summary>
    /// The recipe's model directory in the cache. When it is not cached yet, the shipped model of the same key is
    /// installed there (<see cref="GymReference"/>: the same bytes on every machine), or, when none is shipped or
    /// <paramref name="useReference"/> is false, the model is trained (into a temporary directory, renamed into place
    /// when complete, so an interrupted run leaves no half model behind).
    /// </summary>
    public static string Ensure(GymModelRecipe recipe, string cacheRoot, Action<string>? log = null, IProgressSink? progress = null,
        bool useReference = true)
    {
        recipe.Validated();
        log ??= _ => { };
        var directory = DirectoryOf(recipe, cacheRoot);
        if (IsCached(recipe, cacheRoot)) { log($"gym {recipe.Name}: cached at {directory}"); return directory; }
        Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
        AtomicFile.WriteDirectory(directory, temporary =>
        {
            if (useReference && GymReference.TryWrite(recipe, temporary))
            {
                log($"gym {recipe.Name}: installed the shipped model at {directory}");
                return;
            }
            GymTokenizer.Write(temporary);
            var tokenizer = Qwen3Tokenizer.FromDirectory(temporary);
            using var model = Initial(recipe, tokenizer, cacheRoot, log, progress, useReference);
            var started = DateTime.UtcNow;      // this phase's own time (an init_from model is trained, or found, above)
            log($"gym {recipe.Name}: training {recipe.Steps} steps" + (recipe.InitFrom is { } from ? $" from {from.Name}" : "") + $" (not cached: {directory})");
            var loss = Pretrainer.Train(model, tokenizer, recipe, progress, validateEvery: recipe.Steps / 6,
                validate: m =>
                {
                    var accuracy = SolveAccuracy(m, tokenizer, recipe, 64);
                    log($"gym {recipe.Name}: validation solve accuracy {accuracy:P0}");
                    return accuracy;
                });
            var card = Measure(model, tokenizer, recipe, loss, (DateTime.UtcNow - started).TotalSeconds);
            Qwen3Checkpoint.Save(model, temporary);
            File.WriteAllText(Path.Combine(temporary, "recipe.json"), recipe.ToJson());
            File.WriteAllText(Path.Combine(temporary, "card.json"), JsonSerializer.Serialize(card, CardJson));
            log($"gym {recipe.Name}: solve {card.SolveAccuracy:P1}" + (card.RefineAccuracy is { } r ? $", refine {r:P1}" : "")
                + (card.RefineWithReferenceAccuracy is { } rr ? $", refine with y* {rr:P1}" : "") + $" ({card.Seconds:F0} s)");
        }, install: temporary => Install(temporary, recipe, cacheRoot));
        return directory;
    }

    /// <summary>Renames a complete model directory into its place in the cache (another process may have won the race).</summary>
    static void Install(string temporary, GymModelRecipe recipe, string cacheRoot)
    {
        var directory = DirectoryOf(recipe, cacheRoot);
        try { Directory.Move(temporary, directory); }
        catch (IOException) when (IsCached(recipe, cacheRoot)) { Directory.Delete(temporary, recursive: true); } // another process won
    }

    /// <summary>The model a recipe starts from: the cached model of its <see cref="GymModelRecipe.InitFrom"/>, else random weights.</summary>
    static Qwen3ForCausalLM Initial(GymModelRecipe recipe, ITokenizer tokenizer, string cacheRoot, Action<string> log, IProgressSink? progress, bool useReference)
    {
        if (recipe.InitFrom is { } from)
            return Qwen3Checkpoint.Load(Ensure(from, cacheRoot, log, progress, useReference), CPU, ScalarType.Float32);
        var config = Qwen3Config.Tiny(vocabSize: (tokenizer.VocabularySize + 63) / 64 * 64, hiddenSize: recipe.HiddenSize,
            numHiddenLayers: recipe.Layers, numAttentionHeads: recipe.Heads, numKeyValueHeads: recipe.KvHeads, headDim: recipe.HeadDim,
            intermediateSize: recipe.IntermediateSize, maxPositionEmbeddings: 1024,
            eosTokenIds: new long[] { tokenizer.EndOfTurnId, tokenizer.EndOfTextId });
        var model = new Qwen3ForCausalLM(config, CPU, ScalarType.Float32);
        model.InitialiseRandom(recipe.Seed, 0.02);
        return model;
    }

    /// <summary>Held-out "solve" accuracy on <paramref name="count"/> validation problems (a quick check during training).</summary>
    public static double SolveAccuracy(Qwen3ForCausalLM model, ITokenizer tokenizer, GymModelRecipe recipe, int count)
    {
        var rng = new GymTask.Rng(0xBEEF);
        var level = new GymLevel(recipe.MinTerms, recipe.MaxTerms);
        var terms = Enumerable.Range(0, count).Select(_ => GymTask.DrawFrom(rng, level, GymSplit.Pretraining)).ToArray();
        var builder = new PromptBuilder(tokenizer, enableThinking: false);
        var options = new SamplingOptions { MaxNewTokens = recipe.ResponseBudget, StopTokenIds = tokenizer.StopIds, Seed = 11, VocabularyLimit = tokenizer.VocabularySize };
        var samples = Sampler.Generate(model, terms.Select(t => builder.Encode(Prompts.Initial(GymTask.Question(t)))).ToArray(), options);
        return (double)samples.Where((s, i) => Verifier.Verify(TrdPipeline.ResponseText(tokenizer, s.Tokens), GymTask.Answer(terms[i]))).Count() / count;
    }

    /// <summary>Validation accuracies of a model at the rollout sampling (T 0.6, top-p 0.95, top-k 20).</summary>
    public static GymModelCard Measure(Qwen3ForCausalLM model, ITokenizer tokenizer, GymModelRecipe recipe, IReadOnlyList<PretrainStep> loss, double seconds)
    {
        const int count = 128;
        var level = new GymLevel(recipe.MinTerms, recipe.MaxTerms);
        var rng = new GymTask.Rng(0xC0FFEE);
        var terms = Enumerable.Range(0, count).Select(_ => GymTask.DrawFrom(rng, level, GymSplit.Pretraining)).ToArray();
        var builder = new PromptBuilder(tokenizer, enableThinking: false);
        var options = new SamplingOptions
        {
            MaxNewTokens = recipe.ResponseBudget, StopTokenIds = tokenizer.StopIds, Seed = 7, VocabularyLimit = tokenizer.VocabularySize,
        };
        (double Accuracy, double Wait) Score(Func<int[], string> message)
        {
            var samples = Sampler.Generate(model, terms.Select(t => builder.Encode(message(t))).ToArray(), options);
            var texts = samples.Select(s => TrdPipeline.ResponseText(tokenizer, s.Tokens)).ToArray();
            var correct = texts.Where((text, i) => Verifier.Verify(text, GymTask.Answer(terms[i]))).Count();
            return ((double)correct / count, (double)texts.Count(t => t.Contains("Wait", StringComparison.Ordinal)) / count);
        }
        string Attempt(int[] t) => GymTask.DrawAttemptUnder(recipe.EffectiveRecovery, rng, t, recipe.AttemptSlipRate, recipe.AttemptCarryShare, recipe.AttemptTruncate);
        var solve = Score(t => Prompts.Initial(GymTask.Question(t)));
        double? refine = recipe.Refine > 0 ? Score(t => Prompts.Refine(GymTask.Question(t), Attempt(t), null)).Accuracy : null;
        double? refineRef = recipe.RefineWithReference > 0 ? Score(t => Prompts.Refine(GymTask.Question(t), Attempt(t), GymTask.Solution(t))).Accuracy : null;
        var parameters = model.parameters().Sum(p => p.numel());
        return new GymModelCard(recipe.Name, recipe.Key, parameters, seconds, count, solve.Accuracy, solve.Wait, refine, refineRef, loss.ToArray());
    }
}
