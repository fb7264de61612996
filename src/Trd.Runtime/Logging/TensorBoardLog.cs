using TorchSharp;
using TorchSharp.Modules;

namespace Trd.Runtime.Logging;

/// <summary>
/// Scalars for TensorBoard, through TorchSharp's <c>torch.utils.tensorboard.SummaryWriter</c>: one event file,
/// <c>events.out.tfevents.{ticks}.{host}.{pid}.{n}</c>, in the log directory, in TensorFlow's TFRecord framing
/// (uint64 length, masked CRC-32C of the length, the <c>Event</c> protobuf, masked CRC-32C of it), starting with a
/// <c>file_version: "brain.Event:2"</c> event. Each scalar is one event with one <c>simple_value</c>. The writer
/// opens, appends to and closes the file for every event, so each is on disk when the call returns and nothing is
/// left to flush. Safe to call from several threads.
/// <para>
/// What TorchSharp 0.107's writer imposes: values are stored as float32 (<c>simple_value</c> is a float in the
/// protobuf, as in PyTorch); steps must fit an int32 (larger is an <see cref="ArgumentOutOfRangeException"/>);
/// wall times are whole Unix seconds; its CRC-32C is native code in LibTorchSharp, so the torch native library is
/// loaded on first use; and its opening <c>file_version</c> event has .NET ticks, not Unix seconds, as its wall time
/// (TensorBoard only uses that time to order runs by start; scalars carry their own). NaN and ±Infinity are written
/// as they are (TensorBoard shows them).
/// </para>
/// </summary>
public sealed class TensorBoardLog : IDisposable
{
    readonly SummaryWriter _writer;
    readonly TimeProvider _time;
    readonly Lock _lock = new();
    bool _disposed;

    /// <summary>Creates <paramref name="logDir"/> if missing and a new event file in it.</summary>
    /// <param name="logDir">The run's TensorBoard directory (point <c>tensorboard --logdir</c> at it or a parent).</param>
    /// <param name="time">The clock for event wall times; the system clock if null.</param>
    public TensorBoardLog(string logDir, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(logDir);
        LogDir = Path.GetFullPath(logDir);
        _time = time ?? TimeProvider.System;
        // An explicit directory and createRunName: false, so the writer neither invents a runs/<date_host> name
        // nor nests one below ours.
        _writer = torch.utils.tensorboard.SummaryWriter(LogDir, filename_suffix: null, createRunName: false);
    }

    /// <summary>The directory the event file is in.</summary>
    public string LogDir { get; }

    /// <summary>Writes each value as the scalar <c>name</c> at <paramref name="step"/>, all with the same wall time.</summary>
    public void Scalars(long step, IReadOnlyDictionary<string, double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (step is < int.MinValue or > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(step), step, "TorchSharp's SummaryWriter takes an int32 step");
        var wallTime = _time.GetUtcNow().ToUnixTimeSeconds();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var (tag, value) in values)
                _writer.add_scalar(tag, (float)value, (int)step, wallTime);
        }
    }

    /// <summary>Writes one scalar.</summary>
    public void Scalar(string tag, long step, double value) =>
        Scalars(step, new Dictionary<string, double> { [tag] = value });

    /// <summary>Ends the log; later writes are an <see cref="ObjectDisposedException"/>. (The event file is already
    /// complete: the writer keeps no file open.)</summary>
    public void Dispose()
    {
        lock (_lock) _disposed = true;
    }
}
