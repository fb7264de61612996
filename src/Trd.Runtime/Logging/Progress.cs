using System.Globalization;

namespace Trd.Runtime.Logging;

/// <summary>Where a long stage (generation, scoring, a training epoch) stands.</summary>
/// <param name="Stage">The stage's name, e.g. <c>generate</c>.</param>
/// <param name="Done">Items finished (prompts, batches, steps).</param>
/// <param name="Total">Items in the stage; 0 or less when unknown.</param>
/// <param name="TokensPerSecond">Tokens processed per second since the stage started; 0 before any time passed.</param>
/// <param name="Eta">Estimated time to finish, from the average time per item so far; null until an item is done
/// or when the total is unknown, zero once done.</param>
public sealed record ProgressUpdate(string Stage, long Done, long Total, double TokensPerSecond, TimeSpan? Eta)
{
    /// <summary>Whether the stage has finished all its items (false when the total is unknown).</summary>
    public bool IsComplete => Total > 0 && Done >= Total;
}

/// <summary>Receives progress; the CLI renders it, tests record it. Implementations must be thread-safe.</summary>
public interface IProgressSink
{
    /// <summary>Takes one update. Called on the worker's thread; should return quickly.</summary>
    void Report(ProgressUpdate update);
}

/// <summary>
/// Counts a stage's finished items and tokens and turns them into <see cref="ProgressUpdate"/>s: tokens per second
/// and the ETA are averages since <see cref="ProgressTracker"/> was made, timed with the clock's monotonic
/// timestamp (<see cref="TimeProvider.GetTimestamp"/>), so a wall-clock change cannot make them jump. Pass a
/// <see cref="TimeProvider"/> to test it without waiting. Thread-safe.
/// </summary>
public sealed class ProgressTracker
{
    readonly IProgressSink? _sink;
    readonly TimeProvider _time;
    readonly long _started;
    readonly Lock _lock = new();
    long _done;
    long _tokens;

    /// <summary>Starts the clock for a stage.</summary>
    /// <param name="stage">The stage's name.</param>
    /// <param name="total">Items in the stage; 0 or less when unknown (then no ETA).</param>
    /// <param name="sink">Where each update goes, if anywhere.</param>
    /// <param name="time">The clock; the system's if null.</param>
    public ProgressTracker(string stage, long total, IProgressSink? sink = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(stage);
        Stage = stage;
        Total = total;
        _sink = sink;
        _time = time ?? TimeProvider.System;
        _started = _time.GetTimestamp();
    }

    /// <summary>The stage's name.</summary>
    public string Stage { get; }

    /// <summary>Items in the stage (0 or less: unknown).</summary>
    public long Total { get; }

    /// <summary>
    /// Records <paramref name="items"/> more finished items that processed <paramref name="tokens"/> tokens, sends
    /// the update to the sink, and returns it.
    /// </summary>
    public ProgressUpdate Advance(long items, long tokens = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(items);
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        ProgressUpdate update;
        lock (_lock)
        {
            _done += items;
            _tokens += tokens;
            update = Snapshot();
        }
        _sink?.Report(update);
        return update;
    }

    /// <summary>The current state, without advancing or reporting.</summary>
    public ProgressUpdate Current
    {
        get { lock (_lock) return Snapshot(); }
    }

    ProgressUpdate Snapshot()
    {
        var elapsed = _time.GetElapsedTime(_started);
        var seconds = elapsed.TotalSeconds;
        var tokensPerSecond = seconds > 0 ? _tokens / seconds : 0.0;
        TimeSpan? eta =
            Total <= 0 || _done == 0 ? null
            : _done >= Total ? TimeSpan.Zero
            : TimeSpan.FromTicks((long)Math.Min(TimeSpan.MaxValue.Ticks, (double)elapsed.Ticks / _done * (Total - _done)));
        return new ProgressUpdate(Stage, _done, Total, tokensPerSecond, eta);
    }
}

/// <summary>
/// Writes progress as plain lines to standard error (or any writer):
/// <c>[generate] 120/500 (24.0%)  1534.2 tok/s  ETA 00:03:12</c>. At most one line per
/// <see cref="MinInterval"/> for each stage (stages running side by side are throttled apart), but a stage's first
/// update and its completion are always written, so a finished stage always ends on its last line. Thread-safe.
/// (The CLI renders progress richly itself; this sink is for logs and plain terminals.)
/// </summary>
public sealed class ConsoleProgressSink : IProgressSink
{
    readonly TextWriter _writer;
    readonly TimeProvider _time;
    readonly Lock _lock = new();
    readonly Dictionary<string, long> _lastWritten = new(StringComparer.Ordinal);

    /// <summary>A sink writing to <paramref name="writer"/> (standard error if null).</summary>
    /// <param name="writer">Where lines go.</param>
    /// <param name="minInterval">The least time between two lines of a stage; half a second if null.</param>
    /// <param name="time">The clock for throttling; the system's if null.</param>
    public ConsoleProgressSink(TextWriter? writer = null, TimeSpan? minInterval = null, TimeProvider? time = null)
    {
        _writer = writer ?? Console.Error;
        MinInterval = minInterval ?? TimeSpan.FromSeconds(0.5);
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The least time between two lines of the same stage.</summary>
    public TimeSpan MinInterval { get; }

    /// <inheritdoc/>
    public void Report(ProgressUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            var due = update.IsComplete
                || !_lastWritten.TryGetValue(update.Stage, out var last)
                || _time.GetElapsedTime(last, now) >= MinInterval;
            if (!due) return;
            _lastWritten[update.Stage] = now;
            _writer.WriteLine(Format(update));
            _writer.Flush();
        }
    }

    /// <summary>The line written for <paramref name="update"/>.</summary>
    public static string Format(ProgressUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var c = CultureInfo.InvariantCulture;
        var count = update.Total > 0
            ? string.Format(c, "{0}/{1} ({2:F1}%)", update.Done, update.Total, 100.0 * update.Done / update.Total)
            : update.Done.ToString(c);
        var rate = update.TokensPerSecond > 0 ? string.Format(c, "  {0:F1} tok/s", update.TokensPerSecond) : "";
        var eta = update.Eta is { } e ? "  ETA " + FormatDuration(e) : "";
        return $"[{update.Stage}] {count}{rate}{eta}";
    }

    static string FormatDuration(TimeSpan t) =>
        t.TotalHours >= 100
            ? string.Format(CultureInfo.InvariantCulture, "{0:F0}h", t.TotalHours)
            : string.Format(CultureInfo.InvariantCulture, "{0:00}:{1:00}:{2:00}", (int)t.TotalHours, t.Minutes, t.Seconds);
}
