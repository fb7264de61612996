using System.CommandLine;
using Trd.Runtime.Gym;
using Trd.Runtime.Logging;

namespace Trd.Cli;

/// <summary>trd gym: train (or find cached) the gym's student and teacher and print what they measured.</summary>
static class GymCommand
{
    public static Command Create()
    {
        var cache = new Option<DirectoryInfo?>("--cache") { Description = "The model cache (default: $TRD_CACHE, else $XDG_CACHE_HOME/trd, else ~/.cache/trd)." };
        var command = new Command("gym", "Train or find in the cache the prefix-failure gym's student and OPD teacher, and print their validation accuracies.") { cache };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var root = parse.GetValue(cache)?.FullName ?? GymModels.DefaultCacheRoot();
            var progress = new ConsoleProgressSink(Console.Error);
            foreach (var recipe in new[] { GymModels.Student, GymModels.Teacher })
            {
                var directory = GymModels.Ensure(recipe, root, Console.Error.WriteLine, progress);
                var card = GymModels.ReadCard(directory);
                Console.WriteLine($"{card.Name,-8} {directory}");
                Console.WriteLine($"         {card.Parameters:N0} parameters, {card.Seconds:F0} s to train; validation ({card.ValidationProblems} problems): " +
                    $"solve {card.SolveAccuracy:P1} ({card.SolveWithWait:P0} with Wait)" +
                    (card.RefineAccuracy is { } r ? $", refine {r:P1}" : "") +
                    (card.RefineWithReferenceAccuracy is { } rr ? $", refine with y* {rr:P1}" : ""));
            }
        }));
        return command;
    }
}
