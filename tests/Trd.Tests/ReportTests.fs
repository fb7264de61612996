module Trd.Tests.ReportTests
