"""Analysis of search results: curves, statistics and reports."""
