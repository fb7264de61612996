module Trd.Tests.ExecutorTests
