"""An out-of-domain evaluation set: 20th-century verse that is in none of the training sources.

The training corpus is 19th-century and older verse (the Gutenberg Poetry Corpus, Shakespeare,
PoetryDB and poets.org fixtures). These poems were first published 1915-1928 and are public
domain in the United States (published before 1931). They are the yardstick for *forgetting*:
a fine-tune that learns the corpus's style should not get worse at verse in general.

Each entry carries its attribution and license. ``check_overlap`` (used by the tests and by
``benchmarks/sweep_finetune.py``) verifies that no word 8-gram of these poems occurs in a
training text; poems that did overlap the full Gutenberg Poetry Corpus were dropped when this
set was built (see docs/evaluation.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

US_PD = "Public domain in the United States (first published {year}, before 1931)"


@dataclass(frozen=True)
class OodPoem:
    title: str
    author: str
    year: int  # first publication
    text: str

    @property
    def license(self) -> str:
        return US_PD.format(year=self.year)

    @property
    def attribution(self) -> str:
        return f"{self.author}, “{self.title}” ({self.year})"


def _poem(title: str, author: str, year: int, text: str) -> OodPoem:
    return OodPoem(title, author, year, text.strip("\n"))


OOD_POEMS: tuple[OodPoem, ...] = (
    _poem(
        "Stopping by Woods on a Snowy Evening",
        "Robert Frost",
        1923,
        """
Whose woods these are I think I know.
His house is in the village though;
He will not see me stopping here
To watch his woods fill up with snow.

My little horse must think it queer
To stop without a farmhouse near
Between the woods and frozen lake
The darkest evening of the year.

He gives his harness bells a shake
To ask if there is some mistake.
The only other sound's the sweep
Of easy wind and downy flake.

The woods are lovely, dark and deep,
But I have promises to keep,
And miles to go before I sleep,
And miles to go before I sleep.
""",
    ),
    _poem(
        "Nothing Gold Can Stay",
        "Robert Frost",
        1923,
        """
Nature's first green is gold,
Her hardest hue to hold.
Her early leaf's a flower;
But only so an hour.
Then leaf subsides to leaf.
So Eden sank to grief,
So dawn goes down to day.
Nothing gold can stay.
""",
    ),
    _poem(
        "Dust of Snow",
        "Robert Frost",
        1921,
        """
The way a crow
Shook down on me
The dust of snow
From a hemlock tree

Has given my heart
A change of mood
And saved some part
Of a day I had rued.
""",
    ),
    _poem(
        "Acquainted with the Night",
        "Robert Frost",
        1928,
        """
I have been one acquainted with the night.
I have walked out in rain—and back in rain.
I have outwalked the furthest city light.

I have looked down the saddest city lane.
I have passed by the watchman on his beat
And dropped my eyes, unwilling to explain.

I have stood still and stopped the sound of feet
When far away an interrupted cry
Came over houses from another street,

But not to call me back or say good-bye;
And further still at an unearthly height,
One luminary clock against the sky

Proclaimed the time was neither wrong nor right.
I have been one acquainted with the night.
""",
    ),
    _poem(
        "Anecdote of the Jar",
        "Wallace Stevens",
        1919,
        """
I placed a jar in Tennessee,
And round it was, upon a hill.
It made the slovenly wilderness
Surround that hill.

The wilderness rose up to it,
And sprawled around, no longer wild.
The jar was round upon the ground
And tall and of a port in air.

It took dominion everywhere.
The jar was gray and bare.
It did not give of bird or bush,
Like nothing else in Tennessee.
""",
    ),
    _poem(
        "The Snow Man",
        "Wallace Stevens",
        1921,
        """
One must have a mind of winter
To regard the frost and the boughs
Of the pine-trees crusted with snow;

And have been cold a long time
To behold the junipers shagged with ice,
The spruces rough in the distant glitter

Of the January sun; and not to think
Of any misery in the sound of the wind,
In the sound of a few leaves,

Which is the sound of the land
Full of the same wind
That is blowing in the same bare place

For the listener, who listens in the snow,
And, nothing himself, beholds
Nothing that is not there and the nothing that is.
""",
    ),
    _poem(
        "The Emperor of Ice-Cream",
        "Wallace Stevens",
        1922,
        """
Call the roller of big cigars,
The muscular one, and bid him whip
In kitchen cups concupiscent curds.
Let the wenches dawdle in such dress
As they are used to wear, and let the boys
Bring flowers in last month's newspapers.
Let be be finale of seem.
The only emperor is the emperor of ice-cream.

Take from the dresser of deal,
Lacking the three glass knobs, that sheet
On which she embroidered fantails once
And spread it so as to cover her face.
If her horny feet protrude, they come
To show how cold she is, and dumb.
Let the lamp affix its beam.
The only emperor is the emperor of ice-cream.
""",
    ),
    _poem(
        "Disillusionment of Ten O'Clock",
        "Wallace Stevens",
        1915,
        """
The houses are haunted
By white night-gowns.
None are green,
Or purple with green rings,
Or green with yellow rings,
Or yellow with blue rings.
None of them are strange,
With socks of lace
And beaded ceintures.
People are not going
To dream of baboons and periwinkles.
Only, here and there, an old sailor,
Drunk and asleep in his boots,
Catches tigers
In red weather.
""",
    ),
    _poem(
        "The Red Wheelbarrow",
        "William Carlos Williams",
        1923,
        """
so much depends
upon

a red wheel
barrow

glazed with rain
water

beside the white
chickens
""",
    ),
    _poem(
        "The Negro Speaks of Rivers",
        "Langston Hughes",
        1921,
        """
I've known rivers:
I've known rivers ancient as the world and older than the flow of human blood in human veins.

My soul has grown deep like the rivers.

I bathed in the Euphrates when dawns were young.
I built my hut near the Congo and it lulled me to sleep.
I looked upon the Nile and raised the pyramids above it.
I heard the singing of the Mississippi when Abe Lincoln went down to New Orleans,
and I've seen its muddy bosom turn all golden in the sunset.

I've known rivers:
Ancient, dusky rivers.

My soul has grown deep like the rivers.
""",
    ),
    _poem(
        "Mother to Son",
        "Langston Hughes",
        1922,
        """
Well, son, I'll tell you:
Life for me ain't been no crystal stair.
It's had tacks in it,
And splinters,
And boards torn up,
And places with no carpet on the floor—
Bare.
But all the time
I'se been a-climbin' on,
And reachin' landin's,
And turnin' corners,
And sometimes goin' in the dark
Where there ain't been no light.
So boy, don't you turn back.
Don't you set down on the steps
'Cause you finds it's kinder hard.
Don't you fall now—
For I'se still goin', honey,
I'se still climbin',
And life for me ain't been no crystal stair.
""",
    ),
    _poem(
        "Dreams",
        "Langston Hughes",
        1923,
        """
Hold fast to dreams
For if dreams die
Life is a broken-winged bird
That cannot fly.

Hold fast to dreams
For when dreams go
Life is a barren field
Frozen with snow.
""",
    ),
    _poem(
        "I, Too",
        "Langston Hughes",
        1925,
        """
I, too, sing America.

I am the darker brother.
They send me to eat in the kitchen
When company comes,
But I laugh,
And eat well,
And grow strong.

Tomorrow,
I'll be at the table
When company comes.
Nobody'll dare
Say to me,
"Eat in the kitchen,"
Then.

Besides,
They'll see how beautiful I am
And be ashamed—

I, too, am America.
""",
    ),
    _poem(
        "in Just-",
        "E. E. Cummings",
        1920,
        """
in Just-
spring          when the world is mud-
luscious the little
lame balloonman

whistles          far          and wee

and eddieandbill come
running from marbles and
piracies and it's
spring

when the world is puddle-wonderful

the queer
old balloonman whistles
far          and             wee
and bettyandisbel come dancing

from hop-scotch and jump-rope and

it's
spring
and

         the

                  goat-footed

balloonMan          whistles
far
and
wee
""",
    ),
    _poem(
        "If We Must Die",
        "Claude McKay",
        1919,
        """
If we must die, let it not be like hogs
Hunted and penned in an inglorious spot,
While round us bark the mad and hungry dogs,
Making their mock at our accursed lot.
If we must die, O let us nobly die,
So that our precious blood may not be shed
In vain; then even the monsters we defy
Shall be constrained to honor us though dead!
O kinsmen! we must meet the common foe!
Though far outnumbered let us show us brave,
And for their thousand blows deal one death-blow!
What though before us lies the open grave?
Like men we'll face the murderous, cowardly pack,
Pressed to the wall, dying, but fighting back!
""",
    ),
    _poem(
        "America",
        "Claude McKay",
        1921,
        """
Although she feeds me bread of bitterness,
And sinks into my throat her tiger's tooth,
Stealing my breath of life, I will confess
I love this cultured hell that tests my youth.
Her vigor flows like tides into my blood,
Giving me strength erect against her hate,
Her bigness sweeps my being like a flood.
Yet, as a rebel fronts a king in state,
I stand within her walls with not a shred
Of terror, malice, not a word of jeer.
Darkly I gaze into the days ahead,
And see her might and granite wonders there,
Beneath the touch of Time's unerring hand,
Like priceless treasures sinking in the sand.
""",
    ),
    _poem(
        "The Tropics in New York",
        "Claude McKay",
        1920,
        """
Bananas ripe and green, and ginger-root,
Cocoa in pods and alligator pears,
And tangerines and mangoes and grape fruit,
Fit for the highest prize at parish fairs,

Set in the window, bringing memories
Of fruit-trees laden by low-singing rills,
And dewy dawns, and mystical blue skies
In benediction over nun-like hills.

My eyes grew dim, and I could no more gaze;
A wave of longing through my body swept,
And, hungry for the old, familiar ways,
I turned aside and bowed my head and wept.
""",
    ),
    _poem(
        "Yet Do I Marvel",
        "Countee Cullen",
        1925,
        """
I doubt not God is good, well-meaning, kind,
And did He stoop to quibble could tell why
The little buried mole continues blind,
Why flesh that mirrors Him must some day die,
Make plain the reason tortured Tantalus
Is baited by the fickle fruit, declare
If merely brute caprice dooms Sisyphus
To struggle up a never-ending stair.
Inscrutable His ways are, and immune
To catechism by a mind too strewn
With petty cares to slightly understand
What awful brain compels His awful hand.
Yet do I marvel at this curious thing:
To make a poet black, and bid him sing!
""",
    ),
    _poem(
        "The Second Coming",
        "W. B. Yeats",
        1920,
        """
Turning and turning in the widening gyre
The falcon cannot hear the falconer;
Things fall apart; the centre cannot hold;
Mere anarchy is loosed upon the world,
The blood-dimmed tide is loosed, and everywhere
The ceremony of innocence is drowned;
The best lack all conviction, while the worst
Are full of passionate intensity.

Surely some revelation is at hand;
Surely the Second Coming is at hand.
The Second Coming! Hardly are those words out
When a vast image out of Spiritus Mundi
Troubles my sight: somewhere in sands of the desert
A shape with lion body and the head of a man,
A gaze blank and pitiless as the sun,
Is moving its slow thighs, while all about it
Reel shadows of the indignant desert birds.
The darkness drops again; but now I know
That twenty centuries of stony sleep
Were vexed to nightmare by a rocking cradle,
And what rough beast, its hour come round at last,
Slouches towards Bethlehem to be born?
""",
    ),
    _poem(
        "Leda and the Swan",
        "W. B. Yeats",
        1924,
        """
A sudden blow: the great wings beating still
Above the staggering girl, her thighs caressed
By the dark webs, her nape caught in his bill,
He holds her helpless breast upon his breast.

How can those terrified vague fingers push
The feathered glory from her loosening thighs?
And how can body, laid in that white rush,
But feel the strange heart beating where it lies?

A shudder in the loins engenders there
The broken wall, the burning roof and tower
And Agamemnon dead.
Being so caught up,
So mastered by the brute blood of the air,
Did she put on his knowledge with his power
Before the indifferent beak could let her drop?
""",
    ),
    _poem(
        "Sailing to Byzantium",
        "W. B. Yeats",
        1928,
        """
That is no country for old men. The young
In one another's arms, birds in the trees,
—Those dying generations—at their song,
The salmon-falls, the mackerel-crowded seas,
Fish, flesh, or fowl, commend all summer long
Whatever is begotten, born, and dies.
Caught in that sensual music all neglect
Monuments of unageing intellect.

An aged man is but a paltry thing,
A tattered coat upon a stick, unless
Soul clap its hands and sing, and louder sing
For every tatter in its mortal dress,
Nor is there singing school but studying
Monuments of its own magnificence;
And therefore I have sailed the seas and come
To the holy city of Byzantium.

O sages standing in God's holy fire
As in the gold mosaic of a wall,
Come from the holy fire, perne in a gyre,
And be the singing-masters of my soul.
Consume my heart away; sick with desire
And fastened to a dying animal
It knows not what it is; and gather me
Into the artifice of eternity.

Once out of nature I shall never take
My bodily form from any natural thing,
But such a form as Grecian goldsmiths make
Of hammered gold and gold enamelling
To keep a drowsy Emperor awake;
Or set upon a golden bough to sing
To lords and ladies of Byzantium
Of what is past, or passing, or to come.
""",
    ),
    _poem(
        "Reapers",
        "Jean Toomer",
        1923,
        """
Black reapers with the sound of steel on stones
Are sharpening scythes. I see them place the hones
In their hip-pockets as a thing that's done,
And start their silent swinging, one by one.
Black horses drive a mower through the weeds,
And there, a field rat, startled, squealing bleeds,
His belly close to ground. I see the blade,
Blood-stained, continue cutting weeds and shade.
""",
    ),
    _poem(
        "Résumé",
        "Dorothy Parker",
        1926,
        """
Razors pain you;
Rivers are damp;
Acids stain you;
And drugs cause cramp.
Guns aren't lawful;
Nooses give;
Gas smells awful;
You might as well live.
""",
    ),
    _poem(
        "One Perfect Rose",
        "Dorothy Parker",
        1926,
        """
A single flow'r he sent me, since we met.
All tenderly his messenger he chose;
Deep-hearted, pure, with scented dew still wet—
One perfect rose.

I knew the language of the floweret;
"My fragile leaves," it said, "his heart enclose."
Love long has taken for his amulet
One perfect rose.

Why is it no one ever sent me yet
One perfect limousine, do you suppose?
Ah no, it's always just my luck to get
One perfect rose.
""",
    ),
    _poem(
        "Velvet Shoes",
        "Elinor Wylie",
        1921,
        """
Let us walk in the white snow
In a soundless space;
With footsteps quiet and slow,
At a tranquil pace,
Under veils of white lace.

I shall go shod in silk,
And you in wool,
White as a white cow's milk,
More beautiful
Than the breast of a gull.

We shall walk through the still town
In a windless peace;
We shall step upon white down,
Upon silver fleece,
Upon softer than these.

We shall walk in velvet shoes:
Wherever we go
Silence will fall like dews
On white silence below.
We shall walk in the snow.
""",
    ),
    _poem(
        "The Hollow Men (I)",
        "T. S. Eliot",
        1925,
        """
We are the hollow men
We are the stuffed men
Leaning together
Headpiece filled with straw. Alas!
Our dried voices, when
We whisper together
Are quiet and meaningless
As wind in dry grass
Or rats' feet over broken glass
In our dry cellar

Shape without form, shade without colour,
Paralysed force, gesture without motion;

Those who have crossed
With direct eyes, to death's other Kingdom
Remember us—if at all—not as lost
Violent souls, but only
As the hollow men
The stuffed men.
""",
    ),
    _poem(
        "Fog",
        "Carl Sandburg",
        1916,
        """
The fog comes
on little cat feet.

It sits looking
over harbor and city
on silent haunches
and then moves on.
""",
    ),
    _poem(
        "Adlestrop",
        "Edward Thomas",
        1917,
        """
Yes. I remember Adlestrop—
The name, because one afternoon
Of heat the express-train drew up there
Unwontedly. It was late June.

The steam hissed. Someone cleared his throat.
No one left and no one came
On the bare platform. What I saw
Was Adlestrop—only the name

And willows, willow-herb, and grass,
And meadowsweet, and haycocks dry,
No whit less still and lonely fair
Than the high cloudlets in the sky.

And for that minute a blackbird sang
Close by, and round him, mistier,
Farther and farther, all the birds
Of Oxfordshire and Gloucestershire.
""",
    ),
    _poem(
        "Once by the Pacific",
        "Robert Frost",
        1926,
        """
The shattered water made a misty din.
Great waves looked over others coming in,
And thought of doing something to the shore
That water never did to land before.
The clouds were low and hairy in the skies,
Like locks blown forward in the gleam of eyes.
You could not tell, and yet it looked as if
The shore was lucky in being backed by cliff,
The cliff in being backed by continent;
It looked as if a night of dark intent
Was coming, and not only a night, an age.
Someone had better be prepared for rage.
There would be more than ocean-water broken
Before God's last Put out the Light was spoken.
""",
    ),
    _poem(
        "Thirteen Ways of Looking at a Blackbird (I-V)",
        "Wallace Stevens",
        1917,
        """
Among twenty snowy mountains,
The only moving thing
Was the eye of the blackbird.

I was of three minds,
Like a tree
In which there are three blackbirds.

The blackbird whirled in the autumn winds.
It was a small part of the pantomime.

A man and a woman
Are one.
A man and a woman and a blackbird
Are one.

I do not know which to prefer,
The beauty of inflections
Or the beauty of innuendoes,
The blackbird whistling
Or just after.
""",
    ),
    _poem(
        "Buffalo Bill 's",
        "E. E. Cummings",
        1920,
        """
Buffalo Bill 's
defunct
        who used to
        ride a watersmooth-silver
                                  stallion
and break onetwothreefourfive pigeonsjustlikethat
                                                  Jesus
he was a handsome man
                      and what i want to know is
how do you like your blue-eyed boy
Mister Death
""",
    ),
    _poem(
        "Spring is like a perhaps hand",
        "E. E. Cummings",
        1925,
        """
Spring is like a perhaps hand
(which comes carefully
out of Nowhere)arranging
a window,into which people look(while
people stare
arranging and changing placing
carefully there a strange
thing and a known thing here)and

changing everything carefully

spring is like a perhaps
Hand in a window
(carefully to
and fro moving New and
Old things,while
people stare carefully
moving a perhaps
fraction of flower here placing
an inch of air there)and

without breaking anything.
""",
    ),
)

_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters and apostrophes), the unit of the 8-gram overlap check."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def check_overlap(training_texts: Iterable[str], poems: Iterable[OodPoem] = OOD_POEMS, n: int = 8) -> dict:
    """``{attribution: shared n-gram count}`` for every poem sharing a word ``n``-gram with a training text.

    Each training text is read once as a word stream, so a shared phrase is found across its
    line breaks too. An empty result means the set is clean against ``training_texts``.
    """
    poems = list(poems)
    owner: dict[tuple[str, ...], set[int]] = {}
    for index, poem in enumerate(poems):
        for gram in ngrams(words(poem.text), n):
            owner.setdefault(gram, set()).add(index)
    hits: dict[int, set[tuple[str, ...]]] = {}
    for text in training_texts:
        tokens = words(text)
        for i in range(len(tokens) - n + 1):
            gram = tuple(tokens[i : i + n])
            for index in owner.get(gram, ()):
                hits.setdefault(index, set()).add(gram)
    return {poems[index].attribution: len(grams) for index, grams in sorted(hits.items())}


def ood_texts(poems: Iterable[OodPoem] = OOD_POEMS) -> list[str]:
    """The poem texts, the input of ``evaluate_perplexity``."""
    return [poem.text for poem in poems]
