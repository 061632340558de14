"""Feedback on search results and answers, the log of every question, and the admins'
Insights page built from them."""
