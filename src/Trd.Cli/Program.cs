using System.CommandLine;
using Trd.Runtime.Study;
using Trd.Runtime.Pipeline;

namespace Trd.Cli;

/// <summary>
/// <c>trd</c>: the pipeline's stages from the command line. Every command has <c>--help</c>; failures print one
/// message naming the file, field or value and exit non-zero (2: bad input, a config or an argument; 3: the run
/// directory is in use by another process; 1: anything else, a fault that is not the input's, with the exception for
/// a bug report).
/// </summary>
public static class Program
{
    static int Main(string[] args) => Run(args);

    /// <summary>The parser's message in words: "as expected type 'System.Int32'" becomes "as an integer".</summary>
    static string Plain(string message) => System.Text.RegularExpressions.Regex.Replace(message, @"as expected type '([^']+)'", m => m.Groups[1].Value switch
    {
        "System.Int32" or "System.Int64" => "as an integer",
        "System.Double" or "System.Single" => "as a number",
        "System.Boolean" => "as true or false",
        _ => "as a value of that option",
    });

    /// <summary>Parses and runs one command line; the exit code. Tests call it in-process.</summary>
    public static int Run(string[] args)
    {
        var root = new RootCommand("Trd: trajectory-refined distillation (TRD) for Qwen3 models — rollouts, refinement, distillation, evaluation.");
        foreach (var command in StageCommands.All()) root.Add(command);
        root.Add(StageCommands.Check());
        root.Add(ToolCommands.Tokenize());
        root.Add(ToolCommands.Generate());
        root.Add(ExportCommand.Create());
        root.Add(GymCommand.Create());
        root.Add(StudyCommand.Create(Trd.Report.Report.WriteResults, Trd.Report.GridReport.WriteResults));
        // a grid directory (grid-results.json) gets the grid's report, a study directory the study's
        root.Add(StudyCommand.Report(directory => File.Exists(Path.Combine(directory, GridResults.FileName))
            ? Trd.Report.GridReport.Write(directory) : Trd.Report.Report.Write(directory)));
        root.Add(Serve.ServeCommand.Create());
        var topic = new Argument<string?>("COMMAND") { Description = "The command to explain (all of them when omitted).", Arity = ArgumentArity.ZeroOrOne };
        var help = new Command("help", "Show help for trd or one of its commands.") { topic };
        help.SetAction(parse => root.Parse(parse.GetValue(topic) is { } name ? [name, "--help"] : ["--help"]).Invoke());
        root.Add(help);
        Cli.WithExamples(root);
        // Arguments are text, never "@file" response files: `trd tokenize -m M @notes` encodes "@notes".
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            // One line naming the argument and where help is, as conventional tools do; the help itself stays off.
            var command = string.Join(' ', parse.CommandResult.Command.Name == root.Name ? ["trd"] : ["trd", parse.CommandResult.Command.Name]);
            // The error about a token the user typed names it; "Required command was not provided" comes with it.
            var error = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            Console.Error.WriteLine($"trd: {Cli.Cut(Plain(error.Message))} (see '{command} --help')");
            return Cli.BadInput;
        }
        return parse.Invoke();
    }
}
