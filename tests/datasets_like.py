"""Small stand-ins for the real data a data scientist tried (issue 30), made here rather than shipped:
palmerpenguins, Titanic and ggplot2's diamonds, with the traits that mattered (missing values, categoricals,
names, an index column), at a size a test can run."""

import numpy as np
import pandas as pd


def penguins_like(seed=0):
    """344 rows: species (3 classes, first column as in palmerpenguins), island and sex (categorical), four
    measurements with 2 missing each, sex missing in 11 rows."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], 344, p=[0.44, 0.2, 0.36])
    shift = pd.Series(species).map({"Adelie": 0.0, "Chinstrap": 1.0, "Gentoo": 2.0}).to_numpy()
    frame = pd.DataFrame({
        "species": species,
        "island": np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen", "Biscoe"], 344)),
        "bill_length_mm": (39 + 5 * shift + rng.normal(0, 2, 344)).round(1),
        "bill_depth_mm": (18.5 - 1.5 * shift + rng.normal(0, 1, 344)).round(1),
        "flipper_length_mm": (190 + 12 * shift + rng.normal(0, 5, 344)).round(0),
        "body_mass_g": (3700 + 700 * shift + rng.normal(0, 300, 344)).round(0),
        "sex": rng.choice(["male", "female"], 344).astype(object),
        "year": rng.choice([2007, 2008, 2009], 344),
    })
    for column in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        frame.loc[[3, 271], column] = np.nan
    frame.loc[[3, 8, 9, 10, 11, 47, 178, 218, 256, 268, 271], "sex"] = np.nan
    return frame.to_csv(index=False)


def titanic_like(seed=0):
    """200 rows: PassengerId (an index), Survived (the target), Name (unique), Sex and Embarked (categorical),
    Ticket (many distinct strings), Cabin (mostly missing), Age missing in 40 rows."""
    rng = np.random.default_rng(seed)
    n = 200
    frame = pd.DataFrame({
        "PassengerId": range(1, n + 1),
        "Survived": rng.integers(0, 2, n),
        "Pclass": rng.integers(1, 4, n),
        "Name": [f"Passenger {i}, Mr. Someone" for i in range(n)],
        "Sex": rng.choice(["male", "female"], n),
        "Age": rng.integers(1, 80, n).astype(float),
        "Ticket": [f"PC {17000 + i % 120}" for i in range(n)],
        "Fare": rng.random(n).round(2) * 100,
        "Cabin": [f"C{i}" if i % 4 == 0 else None for i in range(n)],
        "Embarked": rng.choice(["S", "C", "Q"], n),
    })
    frame.loc[frame.index[::5], "Age"] = np.nan
    return frame.to_csv(index=False)


def diamonds_like(seed=0, n=300):
    """`n` rows sorted by price, with R's `rownames` index first: unique and increasing, so it predicts the
    price almost perfectly while meaning nothing."""
    rng = np.random.default_rng(seed)
    carat = np.sort(rng.uniform(0.2, 3, n))
    frame = pd.DataFrame({
        "rownames": range(1, n + 1),
        "carat": carat.round(2),
        "cut": rng.choice(["Fair", "Good", "Very Good", "Premium", "Ideal"], n),
        "color": rng.choice(list("DEFGHIJ"), n),
        "depth": rng.normal(61.7, 1.4, n).round(1),
        "price": (carat * 4000 + rng.normal(0, 300, n)).round(0),
    })
    return frame.sort_values("price").assign(rownames=range(1, n + 1)).to_csv(index=False)
