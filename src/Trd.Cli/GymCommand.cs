using System.CommandLine;
using System.Security.Cryptography;
using Trd.Runtime.Gym;
using Trd.Runtime.Logging;

namespace Trd.Cli;

/// <summary>
/// trd gym: install (or find cached) the gym's student and teacher and print what they measured; with --retrain,
/// train them from their recipes and say whether this machine reproduces the shipped bytes.
/// </summary>
static class GymCommand
{
    public static Command Create()
    {
        var cache = new Option<DirectoryInfo?>("--cache") { Description = "The model cache (default: $TRD_CACHE, else $XDG_CACHE_HOME/trd, else ~/.cache/trd; with --retrain: runs/gym-retrain)." };
        var retrain = new Option<bool>("--retrain") { Description = "Train the models from their recipes (never installing the shipped ones) into a cache that does not hold them yet, and compare them with the shipped models byte for byte." };
        var modelSeeds = new Option<int?>("--model-seeds") { Description = "Model seeds 1 … N (default 1), as trd study --model-seeds." };
        var command = new Command("gym", "Install from the shipped models, find in the cache, or train the prefix-failure gym's student and OPD teacher, and print their validation accuracies.")
            { cache, retrain, modelSeeds };
        Cli.Examples(command, "trd gym                   # install (or find) the gym's student and teacher, print their cards",
            "trd gym --model-seeds 3   # the three shipped pairs");
        command.SetAction(parse => Cli.Guard(() =>
        {
            var isRetrain = parse.GetValue(retrain);
            var root = parse.GetValue(cache)?.FullName ?? (isRetrain ? Path.GetFullPath(Path.Combine("runs", "gym-retrain")) : GymModels.DefaultCacheRoot());
            var seeds = parse.GetValue(modelSeeds) ?? 1;
            if (seeds < 1) throw new ArgumentException($"--model-seeds {seeds}: at least 1");
            var recipes = Enumerable.Range(1, seeds).SelectMany(m => new[] { GymModels.Student.WithModelSeed(m), GymModels.Teacher.WithModelSeed(m) }).ToArray();
            if (isRetrain)
                foreach (var recipe in recipes)
                    if (GymModels.IsCached(recipe, root))
                        throw new ArgumentException($"--cache {root}: it already holds {Path.GetFileName(GymModels.DirectoryOf(recipe, root))}; --retrain trains into a cache without it (another --cache, or delete that folder)");
            var progress = new ConsoleProgressSink(Console.Error);
            var differ = 0;
            foreach (var recipe in recipes)
            {
                var directory = GymModels.Ensure(recipe, root, Console.Error.WriteLine, progress, useReference: !isRetrain);
                var card = GymModels.ReadCard(directory);
                Console.WriteLine($"{card.Name,-8} {directory}");
                Console.WriteLine($"         {card.Parameters:N0} parameters, {card.Seconds:F0} s to train; validation ({card.ValidationProblems} problems): " +
                    $"solve {card.SolveAccuracy:P1} ({card.SolveWithWait:P0} with Wait)" +
                    (card.RefineAccuracy is { } r ? $", refine {r:P1}" : "") +
                    (card.RefineWithReferenceAccuracy is { } rr ? $", refine with y* {rr:P1}" : ""));
                if (!isRetrain) continue;
                var shipped = GymReference.ModelHash(recipe);
                using var stream = File.OpenRead(Path.Combine(directory, "model.safetensors"));
                var trained = Convert.ToHexStringLower(SHA256.HashData(stream));
                if (shipped is null) Console.WriteLine("         no shipped model of this recipe to compare with");
                else if (shipped == trained) Console.WriteLine($"         identical to the shipped model (sha256 {trained[..16]}…)");
                else
                {
                    differ++;
                    Console.WriteLine($"         differs from the shipped model: sha256 {trained[..16]}… here, {shipped[..16]}… shipped (docs/gym.md: what a CPU changes)");
                }
            }
            if (differ > 0) Console.WriteLine($"{differ} of {recipes.Length} retrained models differ from the shipped ones; studies use the shipped models unless their cache holds others");
        }));
        return command;
    }
}
