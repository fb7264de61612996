using System.CommandLine;
using Trd.Runtime.Pipeline;

namespace Trd.Cli;

/// <summary>
/// <c>trd</c>: the pipeline's stages from the command line. Every command has <c>--help</c>; failures print one
/// message naming the file, field or value and exit non-zero (2: bad input or config; 3: the run directory is in use
/// by another process; 1: anything else).
/// </summary>
static class Program
{
    static int Main(string[] args)
    {
        var root = new RootCommand("Trd: trajectory-refined distillation (TRD) for Qwen3 models — rollouts, refinement, distillation, evaluation.");
        foreach (var command in StageCommands.All()) root.Add(command);
        root.Add(ToolCommands.Tokenize());
        root.Add(ToolCommands.Generate());
        root.Add(GymCommand.Create());
        root.Add(StudyCommand.Create(Trd.Report.Report.WriteResults));
        root.Add(StudyCommand.Report(Trd.Report.Report.Write));
        root.Add(Serve.ServeCommand.Create());
        return root.Parse(args).Invoke();
    }
}
