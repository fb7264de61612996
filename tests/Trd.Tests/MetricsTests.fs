module Trd.Tests.MetricsTests
