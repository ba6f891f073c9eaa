"""``evoforge report``: plots and a written summary of a run (matplotlib, lazily).

:mod:`evoforge.report.facts` gathers what both the report and the dashboard show;
:mod:`evoforge.report.writer` writes the files.
"""
