using Trd.Runtime.Checkpoints;
using Trd.Runtime.Data;
using Trd.Runtime.Pipeline;
using Trd.Runtime.Tokenization;

namespace Trd.Cli;

/// <summary>Turns failures into one message and an exit code.</summary>
static class Cli
{
    /// <summary>Exit code for bad input: a config, file, field or value that cannot be used.</summary>
    public const int BadInput = 2;
    /// <summary>Exit code for a run directory another process holds (its lock names the holder).</summary>
    public const int Busy = 3;

    /// <summary>The longest message printed whole: a bad value of 50 MB is cut, not echoed.</summary>
    public const int MaxMessage = 600;

    /// <summary>A message cut to <see cref="MaxMessage"/> characters, saying how much was left out.</summary>
    public static string Cut(string message) =>
        message.Length <= MaxMessage ? message : $"{message[..MaxMessage]}… ({message.Length - MaxMessage:N0} more characters)";

    static readonly Dictionary<System.CommandLine.Command, string[]> ExamplesOf = [];

    /// <summary>Examples printed at the end of a command's help (<see cref="WithExamples"/>).</summary>
    public static void Examples(System.CommandLine.Command command, params string[] examples) => ExamplesOf[command] = examples;

    /// <summary>The root's help, followed by the helped command's examples.</summary>
    public static void WithExamples(System.CommandLine.RootCommand root)
    {
        var help = root.Options.OfType<System.CommandLine.Help.HelpOption>().First();
        if (help.Action is System.CommandLine.Help.HelpAction inner) help.Action = new ExamplesHelp(inner);
    }

    sealed class ExamplesHelp(System.CommandLine.Help.HelpAction inner) : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        /// <summary>As help itself: `trd train --help` shows help even though --out is missing.</summary>
        public override bool ClearsParseErrors => true;

        public override int Invoke(System.CommandLine.ParseResult parse)
        {
            var code = inner.Invoke(parse);
            if (ExamplesOf.TryGetValue(parse.CommandResult.Command, out var examples))
            {
                var output = parse.InvocationConfiguration.Output;
                output.WriteLine("Examples:");
                foreach (var example in examples) output.WriteLine("  " + example);
                output.WriteLine();
            }
            return code;
        }
    }

    public static int Guard(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (RunLockedException e)
        {
            Console.Error.WriteLine($"trd: {Cut(e.Message)}");
            return Busy;
        }
        catch (Trd.Runtime.Serving.ServerException e)
        {
            // A server that failed: not the input's fault and not a bug; the message names the server and its last error.
            Console.Error.WriteLine($"trd: {Cut(e.Message)}");
            return 1;
        }
        catch (Exception e) when (e is ConfigException or ProblemSetException or CheckpointException or TokenizerFileException or CorpusException
                                      or ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
        {
            // .NET appends " (Parameter 'x')" to an ArgumentException's message: the sentence names what is wrong already.
            var message = e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "") : e.Message;
            Console.Error.WriteLine($"trd: {Cut(message)}");
            if (Environment.GetEnvironmentVariable("TRD_DEBUG") is "1") Console.Error.WriteLine(e);
            return BadInput;
        }
        catch (Exception e)
        {
            // Not the input's fault: a bug or the machine's. The exception whole, for a bug report.
            Console.Error.WriteLine($"trd: an internal error (not a problem with the input; please report it with this output): {e.GetType().Name}: {Cut(e.Message)}");
            Console.Error.WriteLine(e);
            return 1;
        }
    }
}
