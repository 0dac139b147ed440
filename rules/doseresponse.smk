# doseresponse stage: rules, figure targets and their registration (FIGURES/TABLES).
