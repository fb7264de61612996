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

    public static int Guard(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (RunLockedException e)
        {
            Console.Error.WriteLine($"trd: {e.Message}");
            return Busy;
        }
        catch (Exception e) when (e is ConfigException or ProblemSetException or CheckpointException or TokenizerFileException or CorpusException
                                      or ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
        {
            Console.Error.WriteLine($"trd: {e.Message}");
            if (Environment.GetEnvironmentVariable("TRD_DEBUG") is "1") Console.Error.WriteLine(e);
            return BadInput;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"trd: {e.GetType().Name}: {e.Message}");
            if (Environment.GetEnvironmentVariable("TRD_DEBUG") is "1") Console.Error.WriteLine(e);
            return 1;
        }
    }
}
